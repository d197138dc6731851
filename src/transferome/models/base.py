"""The estimator contract every transferome model follows.

``__init__`` only stores keyword hyperparameters; ``fit(adata, *, schema=None, ...)`` (``schema``
a :class:`~transferome.data.Schema`, defaults when ``None``) validates once, learns,
sets trailing-underscore attributes and returns ``self``; ``predict(adata, targets)`` returns a
new AnnData of predicted log-normalised profiles; ``save(path)`` / ``load(path)`` use
safetensors + JSON (see :mod:`transferome.models._persist`).

The transfer task
-----------------
``targets`` is a sequence of ``(context, perturbation)`` pairs. ``adata`` passed to ``predict``
holds at least the control observations of each target context (usually it is the training
data itself, whose held-out groups were removed). The returned AnnData has the model's genes as
``var_names``, dense float32 ``X``, and ``obs`` columns ``schema.context_key`` and
``schema.perturbation_key`` naming the target of each row; a model may return one row per
target (a mean profile) or several (predicted cells). Combinations are labels joined by
``schema.combination_sep``.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import pandas as pd
from anndata import AnnData

from transferome.data.schema import Schema
from transferome.errors import TransferomeError

__all__ = ["Estimator", "NotFittedError", "Target", "prediction_adata"]

Target = tuple[str, str]
_E = TypeVar("_E", bound="Estimator")


class NotFittedError(TransferomeError, RuntimeError):
    """A method that needs a fitted model was called before ``fit``."""


class Estimator:
    """Base class: parameter introspection, ``repr`` and the fitted check.

    Subclasses list their hyperparameters as keyword-only ``__init__`` arguments stored under
    the same names, set ``name`` (the short name used by the benchmark and the CLI) and
    ``fast_params``.
    """

    name: ClassVar[str] = ""
    fast_params: ClassVar[dict[str, Any]] = {}
    """Hyperparameters for a quick run (tests, ``--quick`` presets): few epochs, small layers."""

    @classmethod
    def param_names(cls) -> list[str]:
        """Names of the hyperparameters, in the order of ``__init__``."""
        signature = inspect.signature(cls.__init__)
        return [p for p in signature.parameters if p != "self"]

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as given to ``__init__``."""
        return {name: getattr(self, name) for name in self.param_names()}

    def set_params(self: _E, **params: Any) -> _E:
        """Change hyperparameters in place and return ``self``.

        A fitted model keeps what it learned: a parameter read at prediction time (e.g.
        XTransfer's ``prediction``) takes effect at once, the others at the next ``fit``.

        Raises
        ------
        TransferomeError
            A name is not a hyperparameter of this model.
        """
        known = self.param_names()
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise TransferomeError(
                f"{type(self).__name__} has no hyperparameter {', '.join(map(repr, unknown))}; "
                f"its hyperparameters are {known}"
            )
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def clone(self: _E) -> _E:
        """Return a new, unfitted estimator with the same hyperparameters."""
        return type(self)(**self.get_params())

    def __repr__(self) -> str:
        defaults = {
            p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()
        }
        changed = [
            f"{k}={v!r}"
            for k, v in self.get_params().items()
            if defaults.get(k) is not v
            and not (isinstance(v, (int, float, str, bool, type(None))) and defaults.get(k) == v)
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    @property
    def is_fitted(self) -> bool:
        """Whether ``fit`` has run (some trailing-underscore attribute is set)."""
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"this {type(self).__name__} is not fitted; call fit() first")

    # Subclasses implement these.
    if TYPE_CHECKING:  # each model's own signature; these tell the type checker they exist

        def fit(self, adata: Any, *args: Any, **kwargs: Any) -> Any:
            """Learn from ``adata``; each model documents its own arguments."""
            ...

        def predict(self, adata: AnnData, *args: Any, **kwargs: Any) -> AnnData:
            """Predict profiles for ``adata``; each model documents its own arguments."""
            ...

    def save(self, path: str | os.PathLike[str]) -> Path:  # pragma: no cover - interface
        """Write the model to ``path`` and return it; a model without files raises here."""
        raise TransferomeError(f"{type(self).__name__} cannot be saved")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Estimator:  # pragma: no cover - interface
        """Read a model written by :meth:`save`; a model without files raises here."""
        raise TransferomeError(f"{cls.__name__} cannot be loaded")


def prediction_adata(
    values: np.ndarray,
    targets: Sequence[Target],
    var_names: Sequence[str],
    schema: Schema,
    *,
    extra_obs: dict[str, Sequence[Any]] | None = None,
) -> AnnData:
    """Build the AnnData ``predict`` returns: one row per entry of ``targets``."""
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2 or values.shape != (len(targets), len(var_names)):
        raise ValueError(
            f"predicted values have shape {values.shape}, expected "
            f"({len(targets)}, {len(var_names)})"
        )
    obs = pd.DataFrame(
        {
            schema.context_key: [str(c) for c, _ in targets],
            schema.perturbation_key: [str(p) for _, p in targets],
            **(extra_obs or {}),
        },
        index=[f"pred_{i}" for i in range(len(targets))],
    )
    return AnnData(X=values, obs=obs, var=pd.DataFrame(index=[str(g) for g in var_names]))

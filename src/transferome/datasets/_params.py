"""The parameters of the simulator's generative model, apart from the model itself.

:class:`GenerativeParams` holds the rates and scales that :mod:`~transferome.datasets._genes`,
:mod:`~transferome.datasets._effects` and :mod:`~transferome.datasets._sampling` read, and
:func:`as_params` turns what :func:`~transferome.datasets.simulate` accepts into one. Kept
apart from :mod:`~transferome.datasets.simulator` so that those modules need not import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, cast

import numpy as np

from transferome.errors import DataValidationError

__all__ = ["GenerativeParams", "as_params"]


@dataclass(frozen=True)
class GenerativeParams:
    """Rates and scales of the generative model (see the module docstrings for their roles).

    Gene evolution (:mod:`~transferome.datasets._genes`): ``program_count_probs``,
    ``loading_range``, ``baseline_sd``, ``baseline_species_sd``, ``p_loss``,
    ``p_duplication``, ``duplicate_drift``, ``p_specific``, ``species_drift``,
    ``p_diverged``, ``diverged_disjoint``, ``p_unannotated``. Contexts and drugs
    (:mod:`~transferome.datasets._effects`): ``context_sd``, ``context_species_sd``,
    ``context_gene_sd``, ``p_tissue_specific``, ``tissue_offset``, ``max_targets``,
    ``effect_range``, ``exposure_range``, ``brain_exposure``, ``sensitivity_sd``,
    ``ec50_range``, ``hill_n``, ``interaction_sd``, ``max_log_change``. Sampling
    (:mod:`~transferome.datasets._sampling`): the rest.

    The structured context dependence, which lets a model predict one context's response
    from others' (each part off at 0; all off: :meth:`unstructured`):

    gain_sd
        Amplitude of the log gain with which a context passes a drug's shift to each program,
        a smooth function of the context's program activities shared by all drugs.
    crosstalk_sd
        Scale of the part of a shift a context carries on to other programs (again a smooth
        function of its activities).
    exposure_sharing
        Share (0-1) of a drug's exposure in a context that belongs to the context (the same
        for every drug); the rest is drawn per (drug, context).
    headroom, headroom_low, headroom_high
        Strength (0-1) with which a gene's change depends on its baseline in the context: a
        gene ``headroom_low`` log units below the context's median gene falls only
        ``1 - headroom / 2`` as far, one ``headroom_high`` above rises only that far.
    species_program_sd
        Log sd of a per-species, per-program sensitivity (species differ per program).
    diverged_disjoint
        Functionally diverged orthologs load on programs their sequence partner does not.
    synergy_shared
        Sub-additivity of a combination on the programs both drugs target (0-1).
    interaction_sd
        The independent residual per (drug, context) and the chance part of synergy.
    """

    program_count_probs: tuple[float, ...] = (0.45, 0.35, 0.15, 0.05)
    loading_range: tuple[float, float] = (0.3, 1.2)
    baseline_sd: float = 1.5
    baseline_species_sd: float = 0.3
    p_loss: float = 0.05
    p_duplication: float = 0.04
    duplicate_drift: float = 0.3
    p_specific: float = 0.05
    species_drift: float = 0.1
    p_diverged: float = 0.1
    p_unannotated: float = 0.03
    context_sd: float = 0.8
    context_species_sd: float = 0.15
    context_gene_sd: float = 0.3
    p_tissue_specific: float = 0.15
    tissue_offset: float = 2.5
    max_targets: int = 3
    effect_range: tuple[float, float] = (1.2, 3.0)
    exposure_range: tuple[float, float] = (0.4, 1.0)
    brain_exposure: float = 0.3
    sensitivity_sd: float = 0.25
    ec50_range: tuple[float, float] = (0.5, 8.0)
    hill_n: float = 1.5
    interaction_sd: float = 0.1
    max_log_change: float = 4.0
    gain_sd: float = 0.8
    crosstalk_sd: float = 0.15
    exposure_sharing: float = 0.8
    headroom: float = 0.4
    headroom_low: float = 2.0
    headroom_high: float = 3.0
    species_program_sd: float = 0.2
    diverged_disjoint: bool = True
    synergy_shared: float = 0.5
    animal_program_sd: float = 0.1
    animal_gene_sd: float = 0.08
    batch_sd: float = 0.08
    day_sd: float = 0.05
    cell_state_sd: float = 0.25
    response_shape: float = 8.0
    bulk_library: float = 2e6
    cell_library: float = 3e3
    library_sd: float = 0.3
    bulk_dispersion: float = 0.04
    cell_dispersion: float = 0.25
    low_integrity_contexts: tuple[str, ...] = ("pancreas",)
    low_integrity_library: float = 0.25
    low_integrity_dispersion: float = 4.0
    low_integrity_noise: float = 0.25

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            _check_type(f.name, value, f.default)
            numbers = value if isinstance(value, tuple) else (value,)
            for v in numbers:
                if isinstance(v, (int, float)) and (not np.isfinite(v) or v < 0):
                    raise DataValidationError(
                        f"GenerativeParams.{f.name} must be finite and >= 0, got {value!r}"
                    )
        if sum(self.program_count_probs) <= 0:
            raise DataValidationError("GenerativeParams.program_count_probs must not all be 0")
        for name in ("p_loss", "p_duplication", "p_diverged", "p_unannotated"):
            if getattr(self, name) >= 1:
                raise DataValidationError(f"GenerativeParams.{name} must be < 1")
        for name in ("exposure_sharing", "headroom", "synergy_shared"):
            if getattr(self, name) > 1:
                raise DataValidationError(
                    f"GenerativeParams.{name} must be between 0 and 1, got {getattr(self, name)}"
                )

    @classmethod
    def unstructured(cls, **changes) -> GenerativeParams:
        """Return the model of transferome 0.1: no structured context dependence.

        Every non-additive part of a drug's effect is drawn independently per (drug,
        context), so nothing in the data predicts it beyond the additive baseline. With the
        same seed, :func:`simulate` gives exactly the atlas of that release. ``changes``
        override fields as in the constructor.
        """
        legacy = {
            "interaction_sd": 0.35,
            "gain_sd": 0.0,
            "crosstalk_sd": 0.0,
            "exposure_sharing": 0.0,
            "headroom": 0.0,
            "species_program_sd": 0.0,
            "diverged_disjoint": False,
            "synergy_shared": 0.0,
        }
        return cls(**{**legacy, **changes})


def _check_type(name: str, value: Any, default: Any) -> None:
    """``value`` of the field ``name`` has the kind of its default (bool, number, tuple)."""
    if isinstance(default, bool):
        ok = isinstance(value, bool | np.bool_)
        kind = "true or false"
    elif isinstance(default, int | float):
        ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
            value, bool
        )
        kind = "a number"
    elif isinstance(default, tuple):
        inner = (str,) if default and isinstance(default[0], str) else (int, float)
        ok = isinstance(value, tuple) and all(
            isinstance(v, inner) and not isinstance(v, bool) for v in value
        )
        kind = "a list of " + ("labels" if inner == (str,) else "numbers")
    else:
        return
    if not ok:
        raise DataValidationError(f"GenerativeParams.{name} must be {kind}, got {value!r}")


def as_params(params: GenerativeParams | Mapping[str, Any] | str | None) -> GenerativeParams:
    """``params`` of :func:`simulate` as a :class:`GenerativeParams`."""
    if params is None:
        return GenerativeParams()
    if isinstance(params, GenerativeParams):
        return params
    if isinstance(params, str):
        if params != "unstructured":
            raise DataValidationError(
                f"params must be GenerativeParams, a mapping of its fields or 'unstructured', "
                f"got {params!r}"
            )
        return GenerativeParams.unstructured()
    if isinstance(params, Mapping):
        names = {f.name for f in fields(GenerativeParams)}
        unknown = sorted(set(map(str, params)) - names)
        if unknown:
            raise DataValidationError(
                f"unknown GenerativeParams fields {unknown}; known: {sorted(names)}"
            )
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
        return GenerativeParams(**cast(dict[str, Any], values))
    raise DataValidationError(
        f"params must be GenerativeParams, a mapping of its fields or 'unstructured', "
        f"got {type(params).__name__}"
    )

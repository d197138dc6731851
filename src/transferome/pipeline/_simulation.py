"""The size of the atlas a ``data.simulate`` section asks for: species and samples."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any


def _simulated_samples(kwargs: Mapping[str, Any]) -> tuple[int, int]:
    """Count the species and samples per species of :func:`~transferome.datasets.simulate`.

    With ``kwargs``, from the same design rules; the defaults of its arguments where not given.
    """
    from transferome.datasets import ORGANS, simulate

    defaults = {
        name: p.default
        for name, p in inspect.signature(simulate).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    given = {**defaults, **{k: v for k, v in kwargs.items() if v is not None}}
    bulk = given.get("mode", "bulk") == "bulk"

    def count(name: str, bulk_default: int, single_cell_default: int) -> int:
        value = kwargs.get(name)
        if value is None:
            return bulk_default if bulk else single_cell_default
        return value if isinstance(value, int) else len(value)

    # The simulator's defaults: mouse + rat, the organs, 3 drugs at one dose (bulk); one
    # species, 3 cell lines, 12 drugs at 3 doses and 3 combinations (single cell).
    n_species = count("species", 2, 1)
    n_contexts = count("contexts", len(ORGANS), 3)
    n_treatments = count("drugs", 3, 12) + count("combinations", 0, 3)
    n_doses = count("doses", 1, 3)
    n_conditions = 1 + n_treatments * n_doses
    if bulk:
        days = len(given.get("blood_days") or ())
        samples = n_conditions * int(given["animals_per_group"]) * (n_contexts + days)
    else:
        per_group = int(given["cells_per_group"])
        multiplier = int(given["control_multiplier"])
        samples = n_contexts * per_group * (n_conditions - 1 + multiplier)
    return n_species, samples

"""The model files of :class:`~transferome.models.dose.DoseResponse` (safetensors + JSON)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from transferome.models._persist import write_model_files
from transferome.models.dose._curves import _Curve, _GenesOnly

if TYPE_CHECKING:
    from transferome.data.dose import ConditionTable
    from transferome.models.dose.response import DoseResponse


def write_files(model: DoseResponse, path: str | os.PathLike[str]) -> Path:
    """Write the fitted ``model`` to the folder ``path``."""
    series = list(model.curves_)
    kinds = list(model.weights_)
    sizes = [len(model.series_[s][0]) for s in series]
    arrays = {
        "amplitude": np.vstack([model.curves_[s].amplitude for s in series]),
        "center": np.array([model.curves_[s].center for s in series], dtype=np.float64),
        "positions": np.concatenate([model.series_[s][0] for s in series]),
        "deltas": np.vstack([model.series_[s][1] for s in series]),
        "sizes": np.array(sizes, dtype=np.int64),
        "halfwidth": np.vstack([model.halfwidth_[k] for k in kinds]),
    }
    for k in kinds:
        arrays[f"weights_{k}"] = np.asarray(model.weights_[k], dtype=np.float64)
    params = {**model.get_params(), "slopes": list(model.slopes), "priors": list(model.priors)}
    extra = {
        "axis": model.table_.axis,
        "levels": list(model.table_.levels),
        "series": series,
        "series_perturbation": [model.series_perturbation_[s] for s in series],
        "kinds": kinds,
        "slope": model.slope_,
        "prior": model.prior_,
        "ec50": model.ec50_.to_dict(orient="list"),
        "ec50_columns": list(model.ec50_.columns),
    }
    return write_model_files(
        path,
        model_class=type(model).__name__,
        params=params,
        arrays=arrays,
        var_names=model.table_.genes,
        extra=extra,
    )


def read_files(
    cls: type[DoseResponse],
    path: str | os.PathLike[str],
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
) -> DoseResponse:
    """Build the model described by ``meta`` and ``arrays`` (checked against each other)."""
    model = cls(**meta["params"])
    extra = meta["extra"]
    series = [str(s) for s in extra["series"]]
    genes = tuple(map(str, meta["var_names"]))
    amplitude, center, sizes = arrays["amplitude"], arrays["center"], arrays["sizes"]
    positions, deltas = arrays["positions"], arrays["deltas"]
    if (
        amplitude.shape != (len(series), len(genes))
        or center.shape != (len(series),)
        or sizes.shape != (len(series),)
        or deltas.shape != (int(sizes.sum()), len(genes))
        or positions.shape != (int(sizes.sum()),)
    ):
        raise ValueError(f"arrays do not match {len(series)} series x {len(genes)} genes")
    model.curves_ = {s: _Curve(float(center[i]), amplitude[i]) for i, s in enumerate(series)}
    starts = np.concatenate([[0], np.cumsum(sizes)])
    model.series_ = {
        s: (positions[starts[i] : starts[i + 1]], deltas[starts[i] : starts[i + 1]])
        for i, s in enumerate(series)
    }
    model.series_perturbation_ = dict(
        zip(series, map(str, extra["series_perturbation"]), strict=True)
    )
    model.slope_, model.prior_ = float(extra["slope"]), float(extra["prior"])
    model.peers_ = {}
    for s, p in model.series_perturbation_.items():
        model.peers_.setdefault(p, []).append(s)
    kinds = [str(k) for k in extra["kinds"]]
    model.weights_ = {k: arrays[f"weights_{k}"] for k in kinds}
    model.halfwidth_ = dict(zip(kinds, arrays["halfwidth"], strict=True))
    # a loaded model reads only the genes, the axis and the levels of its table
    model.table_ = cast(
        "ConditionTable", _GenesOnly(genes, str(extra["axis"]), tuple(extra["levels"]))
    )
    model.ec50_ = pd.DataFrame(extra["ec50"])[list(extra["ec50_columns"])]
    return model

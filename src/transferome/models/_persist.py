"""Model files: a folder holding ``weights.safetensors`` and ``model.json`` (never pickle).

``model.json`` stores the estimator class, its hyperparameters, the gene names it was fitted
on, the schema, the transferome version and anything else JSON-serialisable the model needs;
``weights.safetensors`` stores every array. Both are written atomically.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from transferome.data._atomic import atomic_path, atomic_write_text
from transferome.errors import DataValidationError, ModelFileError

__all__ = ["FORMAT_VERSION", "check_var_names", "read_model_files", "write_model_files"]

FORMAT_VERSION = 1
WEIGHTS = "weights.safetensors"
META = "model.json"


def write_model_files(
    path: str | os.PathLike[str],
    *,
    model_class: str,
    params: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
    var_names: Sequence[str],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a model folder at ``path`` (created if needed) and return it."""
    from safetensors.numpy import save_file

    from transferome import __version__

    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ModelFileError(f"{folder} exists and is not a folder")
    tensors = {name: np.ascontiguousarray(value) for name, value in arrays.items()}
    meta = {
        "format_version": FORMAT_VERSION,
        "model_class": model_class,
        "transferome_version": __version__,
        "params": dict(params),
        "var_names": [str(v) for v in var_names],
        "extra": dict(extra or {}),
        "nan_arrays": sorted(
            name
            for name, value in tensors.items()
            if np.issubdtype(value.dtype, np.floating) and np.isnan(value).any()
        ),
    }
    try:
        text = json.dumps(meta, indent=2, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"model metadata is not JSON-serialisable: {exc}") from exc
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(folder / WEIGHTS) as tmp:
            save_file(tensors, str(tmp))
        atomic_write_text(folder / META, text)
    except BaseException:
        if created:  # an interrupted save leaves no half model folder behind
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def read_model_files(
    path: str | os.PathLike[str], *, model_class: str | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a model folder; return ``(meta, arrays)``.

    Raises
    ------
    ModelFileError
        The folder or a file is missing or corrupt, or it holds another model class.
    """
    from safetensors.numpy import load_file

    folder = Path(path)
    if not folder.is_dir():
        raise ModelFileError(f"{folder}: no model folder there")
    for name in (META, WEIGHTS):
        if not (folder / name).is_file():
            raise ModelFileError(f"{folder}: {name} is missing; not a transferome model folder")
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{folder / META}: corrupt model metadata ({exc})") from exc
    required = {"format_version", "model_class", "params", "var_names", "extra"}
    if not isinstance(meta, dict) or not required <= set(meta):
        raise ModelFileError(f"{folder / META}: missing fields {sorted(required - set(meta))}")
    if meta["format_version"] != FORMAT_VERSION:
        raise ModelFileError(
            f"{folder}: model file format {meta['format_version']} is not supported "
            f"(this transferome reads format {FORMAT_VERSION})"
        )
    if model_class is not None and meta["model_class"] != model_class:
        raise ModelFileError(f"{folder} holds a {meta['model_class']} model, not a {model_class}")
    try:
        arrays = load_file(str(folder / WEIGHTS))
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise ModelFileError(f"{folder / WEIGHTS}: corrupt weights ({exc})") from exc
    _check_arrays(folder / WEIGHTS, arrays, meta.get("nan_arrays"))
    return meta, arrays


def _check_arrays(
    where: Path, arrays: Mapping[str, np.ndarray], nan_arrays: Sequence[str] | None
) -> None:
    """Refuse infinite values, and NaN in an array that held none when it was written.

    ``nan_arrays`` (from ``model.json``) names the arrays written with NaN (a model's table of
    unmeasured groups); files written before it was recorded are checked for infinities only.
    """
    allowed = None if nan_arrays is None else set(map(str, nan_arrays))
    for name, array in arrays.items():
        if not np.issubdtype(array.dtype, np.floating):
            continue
        n_inf = int(np.isinf(array).sum())
        n_nan = int(np.isnan(array).sum()) if allowed is not None and name not in allowed else 0
        if n_inf or n_nan:
            raise ModelFileError(
                f"{where}: array {name!r} holds {n_nan} NaN and {n_inf} infinite values "
                f"(of {array.size}) it did not hold when saved; the file is corrupt: refit "
                "the model"
            )


def check_var_names(expected: Sequence[str], found: Sequence[str], *, what: str = "data") -> None:
    """Raise :class:`DataValidationError` naming the differences when gene lists differ."""
    expected, found = list(map(str, expected)), list(map(str, found))
    if expected == found:
        return
    missing = [g for g in expected if g not in set(found)]
    extra = [g for g in found if g not in set(expected)]
    detail = (
        f"{len(missing)} genes of the model missing from the {what} (e.g. {missing[:5]}), "
        f"{len(extra)} unknown to the model (e.g. {extra[:5]})"
        if missing or extra
        else "same genes in a different order"
    )
    raise DataValidationError(f"the {what}'s genes do not match the model's: {detail}")

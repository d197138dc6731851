"""Model files: a folder holding ``weights.safetensors`` and ``model.json`` (never pickle).

``model.json`` stores the estimator class, its hyperparameters, the gene names it was fitted
on, the schema, the transferome version and anything else JSON-serialisable the model needs;
``weights.safetensors`` stores every array and, in its header, SHA-256 checksums of
``model.json`` and of the arrays, so that a file changed after saving is refused by name
instead of loading to different predictions. Both are written atomically.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from transferome.data import atomic_path, atomic_write_text
from transferome.errors import DataValidationError, ModelFileError

if TYPE_CHECKING:
    import torch

__all__ = [
    "FORMAT_VERSION",
    "check_described",
    "check_params_match",
    "check_var_names",
    "read_model_files",
    "restore_module",
    "stored_array",
    "write_model_files",
]

_Module = TypeVar("_Module", bound="torch.nn.Module")

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
    digests = {_META_DIGEST: _digest(text.encode("utf-8")), _DATA_DIGEST: _tensor_digest(tensors)}
    try:
        with atomic_path(folder / WEIGHTS) as tmp:
            save_file(tensors, str(tmp), metadata=digests)
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
        raw = (folder / META).read_bytes()
        meta = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{folder / META}: corrupt model metadata ({exc})") from exc
    stored = _stored_digests(folder / WEIGHTS)
    if _META_DIGEST in stored and stored[_META_DIGEST] != _digest(raw):
        raise ModelFileError(
            f"{folder / META} was changed after the model was saved (it no longer matches the "
            f"checksum kept in {WEIGHTS}); the folder is corrupt: refit or restore the model"
        )
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
    nan_arrays = meta.get("nan_arrays")
    if nan_arrays is not None and (
        not isinstance(nan_arrays, list) or not all(isinstance(n, str) for n in nan_arrays)
    ):
        raise ModelFileError(f"{folder / META}: field nan_arrays must be a list of array names")
    _check_arrays(folder / WEIGHTS, arrays, nan_arrays)
    if _DATA_DIGEST in stored and stored[_DATA_DIGEST] != _tensor_digest(arrays):
        raise ModelFileError(
            f"{folder / WEIGHTS}: the stored arrays no longer match their checksum; the file "
            "is corrupt: refit or restore the model"
        )
    return meta, arrays


_META_DIGEST = "model_json_sha256"
_DATA_DIGEST = "arrays_sha256"


def _digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _tensor_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of the arrays, in name order."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def _stored_digests(path: Path) -> dict[str, str]:
    """Read the checksums kept in the safetensors header (none in files of earlier releases)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            return dict(handle.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise ModelFileError(f"{path}: corrupt weights ({exc})") from exc


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


def _shape_text(shape: Sequence[int]) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def stored_array(
    arrays: Mapping[str, np.ndarray],
    name: str,
    where: str | os.PathLike[str],
    *,
    shape: Sequence[int] | None = None,
    what: str = "",
) -> np.ndarray:
    """Return the array ``name`` of a model folder, refused when missing or not of ``shape``.

    ``what`` says where the expected shape comes from (``"the perturbations and latent_dim
    of model.json"``), for the message.
    """
    if name not in arrays:
        raise ModelFileError(f"{where}: {WEIGHTS} lacks the array {name!r}; the file is corrupt")
    array = arrays[name]
    if shape is not None and tuple(array.shape) != tuple(shape):
        raise ModelFileError(
            f"{where}: array {name!r} of {WEIGHTS} has shape {_shape_text(array.shape)} but "
            f"{what or META} gives {_shape_text(shape)}; the files do not belong together"
        )
    return array


def check_described(
    where: str | os.PathLike[str], what: str, found: int, expected: int, source: str
) -> None:
    """Refuse a model folder whose ``model.json`` and network disagree on a size.

    ``what`` (a list of ``model.json``) has ``found`` entries but ``source`` (the network's
    sizes) says ``expected``.
    """
    if found != expected:
        raise ModelFileError(
            f"{where}: {META} lists {found} {what} but {source} is {expected}; the file was "
            "edited or is corrupt: refit the model"
        )


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, list | tuple) else value


def check_params_match(
    where: str | os.PathLike[str],
    params: Mapping[str, Any],
    network: Mapping[str, Any],
    names: Sequence[str],
) -> None:
    """Refuse a ``model.json`` whose hyperparameters disagree with the network description.

    The hyperparameters ``names`` are compared with the network description they were built
    into (``params.hidden`` against the network's ``hidden``).
    """
    for name in names:
        if name in params and name in network and _plain(params[name]) != _plain(network[name]):
            raise ModelFileError(
                f"{where}: {META} gives {name} = {params[name]!r} in params but "
                f"{network[name]!r} for the network; the file was edited or is corrupt: refit "
                "the model"
            )


def _as_loaded(shape: Sequence[int]) -> tuple[int, ...]:
    """Return a shape as ``load_state_dict`` compares it.

    A scalar and a one-element vector alike (a 0-d array, as a batch-norm counter, is stored
    with shape ``(1,)``).
    """
    shape = tuple(int(n) for n in shape)
    return (1,) if shape == () else shape


def restore_module(
    build: Callable[[], _Module],
    arrays: Mapping[str, np.ndarray],
    where: str | os.PathLike[str],
    *,
    prefix: str,
) -> _Module:
    """Rebuild the network ``build()`` makes from ``model.json``, with the arrays of ``prefix``.

    ``build`` is first run on PyTorch's meta device, which lays out the tensors without
    memory: their names and shapes are compared with those stored in ``weights.safetensors``,
    so that a description whose sizes disagree with the weights (``hidden: [1000000]`` beside
    a small network) is refused before it sizes any memory. The real network is then as large
    as the stored weights.

    Raises
    ------
    ModelFileError
        ``build`` fails on the description, or a tensor is missing, unexpected or of another
        shape; the message names them.
    """
    import torch

    stored = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
    try:
        with torch.device("meta"):
            layout = {k: tuple(v.shape) for k, v in build().state_dict().items()}
    except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise ModelFileError(f"{where}: {META} describes no valid network ({exc})") from exc
    missing = sorted(set(layout) - set(stored))
    unexpected = sorted(set(stored) - set(layout))
    reshaped = [
        f"{prefix}{k} {_shape_text(stored[k].shape)} stored, {_shape_text(shape)} described"
        for k, shape in layout.items()
        if k in stored and _as_loaded(stored[k].shape) != _as_loaded(shape)
    ]
    if missing or unexpected or reshaped:
        parts = [
            f"{label}: {', '.join(items[:3])}{' ...' if len(items) > 3 else ''}"
            for label, items in (
                (f"tensors missing from {WEIGHTS}", [prefix + k for k in missing]),
                (f"tensors {META} does not describe", [prefix + k for k in unexpected]),
                ("different shapes", reshaped),
            )
            if items
        ]
        raise ModelFileError(
            f"{where}: {META} does not match {WEIGHTS} ({'; '.join(parts)}); the files were "
            "edited or do not belong together: refit the model"
        )
    module = build()
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in stored.items()})
    return module.eval()


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


def load_described(
    path: str | os.PathLike[str],
    model_class: str,
    build: Callable[[str | os.PathLike[str], dict[str, Any], dict[str, np.ndarray]], Any],
    errors: tuple[type[Exception], ...] = (
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        RuntimeError,
    ),
) -> Any:
    """Read a model folder and ``build(path, meta, arrays)`` the estimator from it.

    A field of ``model.json`` that is missing or of the wrong kind (one of ``errors`` raised
    while building) becomes a :class:`ModelFileError` naming the folder and the model class.
    """
    meta, arrays = read_model_files(path, model_class=model_class)
    try:
        return build(path, meta, arrays)
    except ModelFileError:
        raise
    except errors as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ModelFileError(
            f"{path}: model.json does not describe a valid {model_class} model ({detail})"
        ) from exc

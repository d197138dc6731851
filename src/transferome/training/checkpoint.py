"""Training checkpoints without pickle: tensors in safetensors, everything else in JSON.

A checkpoint folder holds ``weights.safetensors`` (the module's state under ``module.``, the
optimizer's and scheduler's tensors under ``optimizer.`` / ``scheduler.``), ``config.json``
(format version, module class, training config, the optimizer and scheduler states with
their tensors replaced by references, and the progress: epoch, best epoch, patience
counter) and ``history.json`` (one record per epoch). Nested states are encoded losslessly:
tuples, integer dict keys and non-finite floats survive the round trip.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from transferome.data import atomic_path, atomic_write_text
from transferome.errors import ModelFileError

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "read_checkpoint", "write_checkpoint"]

CHECKPOINT_FORMAT = 1
WEIGHTS, CONFIG, HISTORY = "weights.safetensors", "config.json", "history.json"


@dataclass
class Checkpoint:
    """The content of a checkpoint folder, as read back."""

    module_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None
    scheduler_state: dict[str, Any] | None
    training_config: dict[str, Any]
    module_class: str
    progress: dict[str, Any]
    history: pd.DataFrame


def _encode(value: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace tensors by references (stored in ``tensors``) and make the rest JSON-safe."""
    if isinstance(value, torch.Tensor):
        tensors[prefix] = value.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": prefix}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _encode(v, f"{prefix}.{k}", tensors) for k, v in value.items()}
        return {
            "__items__": [
                [_encode_key(k), _encode(v, f"{prefix}.{k}", tensors)] for k, v in value.items()
            ]
        }
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{prefix}.{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{prefix}.{i}", tensors) for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ModelFileError(
        f"cannot store {prefix} (a {type(value).__name__}) in a checkpoint; "
        "expected tensors, numbers, strings, lists or dicts"
    )


def _encode_key(key: Any) -> Any:
    if isinstance(key, (bool, int, float, str)) or key is None:
        return key
    raise ModelFileError(f"cannot store a dict key of type {type(key).__name__} in a checkpoint")


def _decode(value: Any, tensors: dict[str, torch.Tensor], where: Path) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors, where) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        key = value["__tensor__"]
        if key not in tensors:
            raise ModelFileError(f"{where}: tensor {key!r} is missing from {WEIGHTS}")
        return tensors[key]
    if "__tuple__" in value:
        return tuple(_decode(v, tensors, where) for v in value["__tuple__"])
    if "__items__" in value:
        return {k: _decode(v, tensors, where) for k, v in value["__items__"]}
    if "__float__" in value:
        return float(value["__float__"])
    return {k: _decode(v, tensors, where) for k, v in value.items()}


def _history_records(history: pd.DataFrame) -> list[dict[str, Any]]:
    records = history.to_dict(orient="records")
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in records
    ]


def write_checkpoint(
    folder: str | os.PathLike[str],
    *,
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any | None,
    training_config: dict[str, Any],
    progress: dict[str, Any],
    history: pd.DataFrame,
) -> Path:
    """Write a checkpoint folder (created if needed); each file is written atomically.

    ``weights.safetensors`` is written first and ``config.json`` last; both record the
    epoch, so a folder left half-updated by a crash is detected on reading.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for name, value in module.state_dict().items():
        tensors[f"module.{name}"] = value.detach().to("cpu", copy=True).contiguous()
    optimizer_json = _encode(optimizer.state_dict(), "optimizer", tensors) if optimizer else None
    scheduler_json = _encode(scheduler.state_dict(), "scheduler", tensors) if scheduler else None
    epoch = str(progress["epoch"])
    meta = {
        "format_version": CHECKPOINT_FORMAT,
        "module_class": type(module).__qualname__,
        "training_config": training_config,
        "progress": _encode(dict(progress), "progress", {}),
        "optimizer": optimizer_json,
        "scheduler": scheduler_json,
    }
    try:
        text = json.dumps(meta, indent=2, sort_keys=True, allow_nan=False)
        history_text = json.dumps(_history_records(history), indent=1, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"checkpoint metadata is not JSON-serialisable: {exc}") from exc
    with atomic_path(folder / WEIGHTS) as tmp:
        save_file(tensors, str(tmp), metadata={"epoch": epoch, "format": str(CHECKPOINT_FORMAT)})
    atomic_write_text(folder / HISTORY, history_text)
    atomic_write_text(folder / CONFIG, text)
    return folder


def read_checkpoint(folder: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint folder written by :func:`write_checkpoint`.

    Raises
    ------
    ModelFileError
        The folder or a file is missing, corrupt, of another format, or half-updated.
    """
    from safetensors import safe_open

    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFileError(f"{folder}: no checkpoint folder there")
    for name in (CONFIG, WEIGHTS, HISTORY):
        if not (folder / name).is_file():
            raise ModelFileError(f"{folder}: {name} is missing; not a training checkpoint")
    try:
        meta = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
        history = json.loads((folder / HISTORY).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{folder}: corrupt checkpoint metadata ({exc})") from exc
    required = {"format_version", "module_class", "training_config", "progress"}
    if not isinstance(meta, dict) or not required <= set(meta):
        missing = sorted(required - set(meta)) if isinstance(meta, dict) else sorted(required)
        raise ModelFileError(f"{folder / CONFIG}: missing fields {missing}")
    if meta["format_version"] != CHECKPOINT_FORMAT:
        raise ModelFileError(
            f"{folder}: checkpoint format {meta['format_version']} is not supported "
            f"(this transferome reads format {CHECKPOINT_FORMAT})"
        )
    try:
        with safe_open(str(folder / WEIGHTS), framework="pt") as handle:
            file_meta = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise ModelFileError(f"{folder / WEIGHTS}: corrupt weights ({exc})") from exc
    progress = _decode(meta["progress"], {}, folder)
    if file_meta.get("epoch") != str(progress.get("epoch")):
        raise ModelFileError(
            f"{folder}: {WEIGHTS} holds epoch {file_meta.get('epoch')} but {CONFIG} epoch "
            f"{progress.get('epoch')}; the checkpoint was only partly written"
        )
    module_state = {k[len("module.") :]: v for k, v in tensors.items() if k.startswith("module.")}
    return Checkpoint(
        module_state=module_state,
        optimizer_state=_decode(meta.get("optimizer"), tensors, folder),
        scheduler_state=_decode(meta.get("scheduler"), tensors, folder),
        training_config=meta["training_config"],
        module_class=meta["module_class"],
        progress=progress,
        history=_history_frame(history),
    )


def _history_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """History records back to a frame; JSON nulls become NaN in numeric columns."""
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    for column in frame.columns:
        if frame[column].dtype == object:
            try:
                frame[column] = pd.to_numeric(frame[column])
            except (TypeError, ValueError):
                continue
    return frame


def load_module_state(module: torch.nn.Module, state: dict[str, torch.Tensor], where: Path) -> None:
    """Load ``state`` into ``module``; a missing, unexpected or reshaped tensor is an error."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or reshaped:
        raise ModelFileError(
            f"{where} does not match this {type(module).__name__}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, different shapes {reshaped[:5]}"
        )
    module.load_state_dict(state)

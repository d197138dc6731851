"""Where a command may write: its output refused, before any work, when it must not or cannot be."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def new_output(
    path: str,
    *,
    overwrite: bool,
    inputs: Sequence[str | os.PathLike[str] | None] = (),
    folder: bool = False,
    option: str = "--out",
) -> Path:
    """Return the output file (or ``folder``), refusing to replace one unless ``overwrite``.

    Also refused before any work (see :func:`check_output`): a file output that is a folder
    or one of the ``inputs``, a folder output that is the working folder (with
    ``overwrite``) or holds one of the ``inputs``, and a place that cannot be written.
    """
    out = check_output(path, overwrite=overwrite, inputs=inputs, folder=folder, option=option)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    return out


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(os.sep)


def _check_writable(folder: Path, label: str) -> None:
    """Refuse the output ``label`` when no file can be created in ``folder``.

    Or in the closest folder above it that exists, where the missing ones would be created.
    """
    import tempfile

    from transferome.errors import TransferomeError

    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise TransferomeError(
            f"cannot write {label}: {existing} is a file, not a folder; choose another place"
        )
    try:
        fd, name = tempfile.mkstemp(prefix=".transferome-write-test.", dir=existing)
    except OSError as exc:
        raise TransferomeError(
            f"cannot write {label}: {existing} is not writable ({exc.strerror or exc}); "
            "choose another place"
        ) from exc
    os.close(fd)
    os.unlink(name)


def check_output(
    path: str | os.PathLike[str],
    *,
    overwrite: bool,
    inputs: Sequence[str | os.PathLike[str] | None] = (),
    folder: bool = False,
    replaces: bool = False,
    option: str = "--out",
) -> Path:
    """Refuse an output that must not or cannot be written, before any work starts.

    Parameters
    ----------
    path
        The ``--out`` of a command.
    overwrite
        Whether ``--overwrite`` was given.
    inputs
        The files and folders the command reads (data, configuration, model folder);
        ``None`` entries are skipped.
    folder
        The output is a folder (otherwise a file).
    replaces
        The command replaces the whole folder (``transferome run``), so the working folder
        is refused even without ``overwrite``.
    option
        How the messages name the output (the option, or ``""``: the path alone).

    Raises
    ------
    TransferomeError
        A file output that is a folder or one of the inputs; a folder output that is the
        working folder or holds it (with ``overwrite``, or always when ``replaces``), or that
        is or holds one of the inputs; an output where nothing can be written (under a file
        or in a folder without write permission). The command line exits with status 2.
    """
    from transferome.errors import TransferomeError

    out = Path(path)
    label = f"{option} {out}" if option else str(out)
    resolved = out.resolve()
    sources = [Path(p).resolve() for p in inputs if p is not None]
    if not folder:
        if out.is_dir():
            raise TransferomeError(f"{label} is a folder; give the name of the file to write")
        for source in sources:
            if resolved == source:
                raise TransferomeError(
                    f"{label} is the input {source}; writing it would replace the input: "
                    "choose another file"
                )
        _check_writable(out.parent, label)
        return out
    cwd = Path.cwd().resolve()
    if (overwrite or replaces) and (resolved == cwd or resolved in cwd.parents):
        raise TransferomeError(
            f"{label} is the working folder {cwd}"
            + ("" if resolved == cwd else " or holds it")
            + "; writing the results there would replace or mix with its files: choose a new "
            "folder for them"
        )
    for source in sources:
        if resolved == source or resolved in source.parents:
            raise TransferomeError(
                f"{label} holds the input {source}; writing the results there would "
                "replace or mix with it: choose a new folder for them"
            )
    _check_writable(out.parent, label)
    if out.is_dir():
        _check_writable(out, label)
    return out

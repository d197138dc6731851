"""One logging set-up for the library and the command line.

Library calls log to the ``transferome`` logger and stay quiet unless the caller
configures logging; the command line calls :func:`configure` once to print messages
(through ``rich`` when the output is a terminal).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

__all__ = ["configure", "console_logging", "get_logger"]

_ROOT = "transferome"
logging.getLogger(_ROOT).addHandler(logging.NullHandler())


def get_logger(name: str) -> logging.Logger:
    """Return the logger of a transferome module (``name`` is usually ``__name__``)."""
    if not name.startswith(_ROOT):
        name = f"{_ROOT}.{name}"
    return logging.getLogger(name)


def configure(verbosity: int = 0) -> None:
    """Print transferome's messages on standard error.

    Parameters
    ----------
    verbosity
        ``-1`` warnings only, ``0`` info, ``1`` or more debug.
    """
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    logger = logging.getLogger(_ROOT)
    for old in list(logger.handlers):
        if not isinstance(old, logging.NullHandler):
            logger.removeHandler(old)
    try:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False, show_time=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    except ImportError:  # pragma: no cover - rich is a core dependency
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


@contextlib.contextmanager
def console_logging(verbosity: int = 0) -> Iterator[None]:
    """:func:`configure` for the duration of a block, then restore the previous set-up.

    The command line runs inside this block, so calling it in-process (from a notebook or a
    test) leaves the ``transferome`` logger as it found it.
    """
    logger = logging.getLogger(_ROOT)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    configure(verbosity)
    try:
        yield
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]

"""One logging set-up for the library and the command line.

Library calls log to the ``transferome`` logger and stay quiet unless the caller
configures logging; the command line calls :func:`configure` once to print messages
(through ``rich`` when the output is a terminal).
"""

from __future__ import annotations

import logging

__all__ = ["configure", "get_logger"]

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
    for handler in list(logger.handlers):
        if not isinstance(handler, logging.NullHandler):
            logger.removeHandler(handler)
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

"""Exceptions raised by transferome.

Every problem with user input is reported as a :class:`TransferomeError` subclass whose
message names the offending key, value or file and what was expected, so that callers
(and the command line) never see a bare traceback from a dependency.
"""

from __future__ import annotations

__all__ = [
    "DataValidationError",
    "ModelFileError",
    "ReaderError",
    "TransferomeError",
]


class TransferomeError(Exception):
    """Base class of every error transferome raises on purpose."""


class DataValidationError(TransferomeError, ValueError):
    """The data do not match the schema the caller asked for."""


class ReaderError(TransferomeError, ValueError):
    """A file could not be read, or is not in the expected layout."""


class ModelFileError(TransferomeError, ValueError):
    """A saved model or checkpoint is missing, corrupt, or does not match the data."""

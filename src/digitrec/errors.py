"""The exceptions digitrec raises on purpose.

Every exception the library raises deliberately derives from
:class:`DigitrecError`, so ``except DigitrecError`` catches all of them. Each
subclass also derives from the built-in exception that fits, so code written
against the standard library (``except ValueError``) keeps working.

Example:
    >>> import digitrec
    >>> try:
    ...     digitrec.load_mnist("validation")
    ... except digitrec.DigitrecError as error:
    ...     print(type(error).__name__)
    InvalidInputError
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ChecksumError",
    "DataFileError",
    "DataNotFoundError",
    "DeviceUnavailableError",
    "DigitrecError",
    "InvalidInputError",
    "InvalidTypeError",
    "MissingDependencyError",
]


class DigitrecError(Exception):
    """Base class of every exception digitrec raises on purpose.

    Example:
        >>> issubclass(digitrec.InvalidInputError, digitrec.DigitrecError)
        True
    """


class InvalidInputError(DigitrecError, ValueError):
    """An argument has the right type but a wrong value, shape or range.

    Example:
        >>> issubclass(digitrec.InvalidInputError, ValueError)
        True
    """


class InvalidTypeError(DigitrecError, TypeError):
    """An argument has a type (or dtype) that digitrec cannot use.

    Example:
        >>> issubclass(digitrec.InvalidTypeError, TypeError)
        True
    """


class DataNotFoundError(DigitrecError, FileNotFoundError):
    """A file that was asked for does not exist.

    Example:
        >>> issubclass(digitrec.DataNotFoundError, FileNotFoundError)
        True
    """


class DataFileError(DigitrecError, ValueError):
    """A file exists but is not what it should be: wrong format, truncated, corrupt.

    Example:
        >>> issubclass(digitrec.DataFileError, ValueError)
        True
    """


class ChecksumError(DataFileError):
    """A file's contents do not match the checksum digitrec knows for it.

    Example:
        >>> issubclass(digitrec.ChecksumError, digitrec.DataFileError)
        True
    """


class CheckpointError(DataFileError):
    """A model or training checkpoint file cannot be used: wrong format, corrupt, or unfit.

    Example:
        >>> issubclass(digitrec.CheckpointError, digitrec.DataFileError)
        True
    """


class MissingDependencyError(DigitrecError, ImportError):
    """An optional dependency that a feature needs is not installed.

    The message names the extra to install, for example ``pip install
    "digitrec[plot]"``.

    Example:
        >>> issubclass(digitrec.MissingDependencyError, ImportError)
        True
    """


class DeviceUnavailableError(DigitrecError, RuntimeError):
    """A device was asked for that this machine does not have.

    Example:
        >>> issubclass(digitrec.DeviceUnavailableError, RuntimeError)
        True
    """

"""The serve extra's packages, imported lazily with an error that says what to install."""

from __future__ import annotations

import importlib.util

from ..errors import MissingDependencyError

INSTALL = 'pip install "digitrec[serve]"'


def missing_extra(what: str) -> MissingDependencyError:
    """The error for a serve-extra package that is not installed."""
    return MissingDependencyError(f"serving needs {what} (the serve extra): {INSTALL}")


def require(*modules: str) -> None:
    """Raise :class:`MissingDependencyError` naming the extra if a module is absent."""
    absent = [name for name in modules if importlib.util.find_spec(name) is None]
    if absent:
        raise missing_extra(", ".join(absent))

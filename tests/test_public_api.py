"""The public surface: what __all__ promises exists, is documented and is typed."""

from __future__ import annotations

import inspect
from importlib import resources

import pytest

import digitrec
import digitrec.plotting


def test_all_is_unique_and_complete() -> None:
    assert len(set(digitrec.__all__)) == len(digitrec.__all__)
    for name in digitrec.__all__:
        assert hasattr(digitrec, name), name
    public = {name for name in vars(digitrec) if not name.startswith("_")}
    modules = {
        "callbacks",
        "checkpoint",
        "attribution",
        "cli",
        "crossval",
        "data",
        "errors",
        "evaluation",
        "export",
        "exporting",
        "inference",
        "io",
        "models",
        "plotting",
        "preprocessing",
        "serving",
        "training",
    }
    assert public - modules <= set(digitrec.__all__)


def test_version_matches_metadata() -> None:
    from importlib.metadata import version

    assert digitrec.__version__ == version("digitrec")


def test_package_is_typed() -> None:
    assert (resources.files("digitrec") / "py.typed").is_file()


PUBLIC_OBJECTS = [
    getattr(digitrec, name)
    for name in digitrec.__all__
    if inspect.isclass(getattr(digitrec, name)) or inspect.isfunction(getattr(digitrec, name))
] + [getattr(digitrec.plotting, name) for name in digitrec.plotting.__all__]


@pytest.mark.parametrize("obj", PUBLIC_OBJECTS, ids=lambda obj: obj.__name__)
def test_every_public_name_has_a_runnable_example(obj: object) -> None:
    doc = inspect.getdoc(obj) or ""
    assert "Example:" in doc, f"{obj!r} lacks an Example section"
    assert ">>>" in doc, f"{obj!r} has no runnable example"


def test_every_deliberate_error_is_a_digitrec_error() -> None:
    errors = [getattr(digitrec, name) for name in digitrec.__all__ if name.endswith("Error")]
    assert len(errors) == 9
    assert all(issubclass(error, digitrec.DigitrecError) for error in errors)

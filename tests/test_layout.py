"""The house: documented import paths keep working, modules stay small, layers point down."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import digitrec

SOURCE = Path(digitrec.__file__).parent
DOCS = Path(__file__).resolve().parent.parent / "docs"
MAX_LINES = 400


def _documented_paths() -> list[str]:
    """Every ``digitrec.<module>.<name>`` the docs reference (autodoc targets and links)."""
    found: set[str] = set()
    for page in DOCS.glob("*.rst"):
        for match in re.finditer(
            r"digitrec\.([a-z_]+)\.([A-Za-z_][A-Za-z_0-9]*)", page.read_text()
        ):
            module, name = match.groups()
            if not name.startswith("_"):
                found.add(f"digitrec.{module}.{name}")
    return sorted(found)


DOCUMENTED = _documented_paths()
# Import paths of the first release that its users may have written down.
RELEASE_1_PATHS = [
    "digitrec.callbacks.Callback",
    "digitrec.callbacks.Checkpoint",
    "digitrec.callbacks.EarlyStopping",
    "digitrec.callbacks.MetricsLogger",
    "digitrec.checkpoint.load",
    "digitrec.checkpoint.save",
    "digitrec.checkpoint.read_metadata",
    "digitrec.checkpoint.dataset_sha256",
    "digitrec.checkpoint.MODEL_FORMAT",
    "digitrec.data.ImageDataset",
    "digitrec.data.load_mnist",
    "digitrec.evaluation.evaluate",
    "digitrec.evaluation.calibrate",
    "digitrec.inference.predict_or_abstain",
    "digitrec.inference.ABSTAINED",
    "digitrec.models.DigitClassifier",
    "digitrec.models.ModelConfig",
    "digitrec.training.Trainer",
    "digitrec.training.TrainConfig",
    "digitrec.training.RECIPES",
    "digitrec.cli.main",
    "digitrec.errors.DigitrecError",
]


@pytest.mark.parametrize("path", sorted(set(DOCUMENTED) | set(RELEASE_1_PATHS)))
def test_documented_import_paths_resolve(path: str) -> None:
    module_name, name = path.rsplit(".", 1)
    module = importlib.import_module(module_name)
    assert hasattr(module, name), f"{path} is documented but does not exist"


def test_export_is_the_function_and_the_module_has_its_own_name() -> None:
    import digitrec.exporting

    assert callable(digitrec.export)
    assert digitrec.export is digitrec.exporting.export


def _modules() -> list[str]:
    return sorted(info.name for info in pkgutil.walk_packages([str(SOURCE)], prefix="digitrec."))


@pytest.mark.parametrize("name", _modules())
def test_no_module_is_over_the_limit(name: str) -> None:
    module = importlib.import_module(name)
    lines = Path(module.__file__ or "").read_text().count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines (limit {MAX_LINES})"


@pytest.mark.parametrize(
    "name",
    [
        name
        for name in _modules()
        if (SOURCE / name.split(".")[1]).is_dir() and name.count(".") == 1
    ],
)
def test_every_sub_package_says_what_lives_there(name: str) -> None:
    doc = importlib.import_module(name).__doc__ or ""
    assert len(doc.split()) >= 40, f"{name} needs a paragraph saying what lives in it"


def _relative_imports(name: str) -> set[str]:
    path = Path(importlib.import_module(name).__file__ or "")
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1])
            if node.module:
                targets.add(f"{base}.{node.module}")
            else:
                targets.update(f"{base}.{alias.name}" for alias in node.names)
    return targets


def test_no_import_cycle() -> None:
    names = set(_modules())
    edges = {name: {t for t in _relative_imports(name) if t in names} for name in names}
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> None:
        if node in done:
            return
        assert node not in visiting, "import cycle: " + " -> ".join([*trail, node])
        visiting.add(node)
        for target in sorted(edges[node]):
            visit(target, [*trail, node])
        visiting.discard(node)
        done.add(node)

    for node in sorted(edges):
        visit(node, [])

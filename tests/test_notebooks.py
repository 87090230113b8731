"""Execute the tutorial notebooks (examples/notebooks/*.py, jupytext's percent format).

The docs build executes them too (myst-nb); these tests put them under the README's
test command. Each notebook runs in a fresh Jupyter kernel, as a reader's would.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path
from typing import Any

import pytest

import digitrec

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "examples" / "notebooks"
GALLERY = ROOT / "examples" / "gallery"

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
plotting = pytest.importorskip("digitrec.plotting")


def _execute(name: str, cwd: Path, **env: str) -> tuple[str, int]:
    """Run examples/notebooks/<name>.py in a kernel; return its text output and figure count."""
    notebook = jupytext.read(NOTEBOOKS / f"{name}.py")
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute(env={**os.environ, **env})
    outputs: list[Any] = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    text = "".join(
        output.get("text", "") or output.get("data", {}).get("text/plain", "") for output in outputs
    )
    figures = sum("image/png" in output.get("data", {}) for output in outputs)
    return text, figures


def test_mnist_tutorial_trains_the_seed_network(tmp_path: Path) -> None:
    text, figures = _execute("mnist_tutorial", tmp_path)
    summary = re.search(
        r"Number of images tested: 10000\nNumber correct: \d+\n"
        r"Model accuracy: ([\d.]+)%",
        text,
    )
    assert summary is not None, text
    assert float(summary.group(1)) > 96.0
    assert "image 0: predicted 7, actual 7" in text
    assert figures == 3  # loss curve, first predictions, mistakes


def test_medical_tutorial_runs_on_the_stand_in(tmp_path: Path) -> None:
    # A path that does not exist: the notebook must fall back to the synthetic stand-in,
    # which is what the docs build shows wherever PneumoniaMNIST is absent.
    text, figures = _execute(
        "medical_tutorial", tmp_path, PNEUMONIAMNIST_NPZ=str(tmp_path / "absent.npz")
    )
    assert "SYNTHETIC STAND-IN" in text
    assert re.search(r"accuracy: [\d.]+%", text), text
    assert "temperature" in text
    assert "min confidence 0.90: abstained on" in text
    assert figures == 4  # two reliability diagrams, the confusion matrix, explanations


def _called_names(path: Path) -> set[str]:
    return {
        node.func.id if isinstance(node.func, ast.Name) else node.func.attr
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute))
    }


def test_every_plotting_function_is_in_an_executed_example() -> None:
    scripts = [*NOTEBOOKS.glob("*.py"), *GALLERY.glob("plot_*.py")]
    called = set().union(*(_called_names(path) for path in scripts))
    missing = sorted(set(plotting.__all__) - called)
    assert not missing, f"no tutorial or gallery example calls {missing}"


def test_make_readme_figure_writes_a_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_example_make_readme_figure", ROOT / "examples" / "make_readme_figure.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    output = tmp_path / "figure.png"
    assert module.main(["--output", str(output), "--limit", "2000", "--epochs", "1"]) == 0
    assert output.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "Saved 16 sample predictions" in capsys.readouterr().out
    assert digitrec.load_mnist("test")  # the bundled data the script read is still there

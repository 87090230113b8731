"""Run examples/medical_pneumonia.py end to end on PneumoniaMNIST, briefly trained."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "medical_pneumonia.py"
# PneumoniaMNIST ships beside the repository, in ../shared; it is not part of the package.
PNEUMONIA = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "medmnist" / "pneumoniamnist.npz"
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEST_IMAGES = 624  # PneumoniaMNIST's official test split: 234 normal, 390 pneumonia

needs_pneumonia = pytest.mark.skipif(
    not PNEUMONIA.is_file(),
    reason=f"PneumoniaMNIST not found at {PNEUMONIA} (the project's ../shared/data/medmnist)",
)

ROW = re.compile(
    r"^(normal|pneumonia)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", re.MULTILINE
)
ACCURACY = re.compile(
    r"^images: (\d+)   accuracy: ([\d.]+)%   balanced accuracy: ([\d.]+)%   ROC AUC: ([\d.]+)$",
    re.MULTILINE,
)
BEFORE = re.compile(
    r"^Test set before calibration: ECE \(15 bins\): ([\d.]+)   NLL: ([\d.]+)   "
    r"Brier: ([\d.]+)   accuracy: ([\d.]+)%$",
    re.MULTILINE,
)
TEMPERATURE = re.compile(
    r"^Fitted temperature \(on the validation split\): ([\d.]+)$", re.MULTILINE
)
ABSTENTION = re.compile(
    r"^Abstention at min confidence ([\d.]+): abstained on (\d+) of (\d+) test images "
    r"\(([\d.]+)%\), accuracy on the other (\d+): ([\d.]+)%$",
    re.MULTILINE,
)

Main = Callable[[list[str]], int]


def _load_example() -> ModuleType:
    """Import the example as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("_example_medical_pneumonia", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example() -> ModuleType:
    return _load_example()


@dataclass(frozen=True)
class Run:
    status: int
    out: str
    err: str
    folder: Path


@pytest.fixture(scope="module")
def run(example: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Train for 2 epochs once, with plots and JSON, and keep what the example printed."""
    if not PNEUMONIA.is_file():
        pytest.skip(f"PneumoniaMNIST not found at {PNEUMONIA} (the project's ../shared/data)")
    folder = tmp_path_factory.mktemp("medical")
    argv = [
        str(PNEUMONIA),
        "--epochs",
        "2",
        "--plots",
        str(folder / "figures"),  # does not exist yet: the example creates it
        "--json",
        str(folder / "report.json"),
    ]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = example.main(argv)
    return Run(status, out.getvalue(), err.getvalue(), folder)


def _one(pattern: re.Pattern[str], text: str) -> tuple[str, ...]:
    matches = pattern.findall(text)
    assert len(matches) == 1, f"expected one line matching {pattern.pattern!r} in:\n{text}"
    found: tuple[str, ...] = matches[0]
    return found


@needs_pneumonia
def test_runs_and_starts_with_the_caveat(run: Run) -> None:
    assert run.status == 0, run.err
    assert run.out.startswith("NOT FOR CLINICAL USE")
    assert "research and education only" in run.out.splitlines()[0]
    assert "Training: 2 epochs, batches of 128, sgd" in run.out  # the cnn recipe, --epochs 2
    assert re.search(r"^Training time: [\d.]+ s$", run.out, re.MULTILINE)
    assert re.search(r"^  test\s+624 images: normal 234, pneumonia 390$", run.out, re.MULTILINE)
    assert "epoch 2/2  train_loss" in run.err  # progress is on by default, on stderr


@needs_pneumonia
def test_prints_the_calibrated_report(run: Run) -> None:
    rows = ROW.findall(run.out)
    assert [row[0] for row in rows] == ["normal", "pneumonia"]
    assert [int(row[1]) for row in rows] == [234, 390]
    for row in rows:
        assert all(0.0 <= float(rate) <= 1.0 for rate in row[2:])
    # For two classes one class's sensitivity is the other's specificity.
    assert rows[0][3] == rows[1][4]
    assert rows[0][4] == rows[1][3]

    images, accuracy, balanced, auroc = _one(ACCURACY, run.out)
    assert int(images) == TEST_IMAGES
    assert float(accuracy) > 80.0  # about 90% after 2 epochs, 91-93% with the full recipe
    assert float(balanced) > 70.0
    assert 0.8 < float(auroc) <= 1.0
    assert "confusion matrix (rows actual, columns predicted):" in run.out

    # Temperature scaling does not change any predicted label, hence not the accuracy.
    ece, nll, brier, accuracy_before = _one(BEFORE, run.out)
    assert accuracy_before == accuracy
    assert 0.0 <= float(ece) <= 1.0
    assert float(nll) > 0.0
    assert 0.0 <= float(brier) <= 1.0

    (temperature,) = re.findall(TEMPERATURE, run.out)
    assert float(temperature) > 0.0
    assert f"temperature: {float(temperature):.3f}" in run.out  # the report used it


@needs_pneumonia
def test_abstention_accounts_for_every_test_image(run: Run) -> None:
    threshold, abstained, total, percent, kept, kept_accuracy = _one(ABSTENTION, run.out)
    assert float(threshold) == 0.9  # the default --min-confidence
    assert int(total) == TEST_IMAGES
    assert int(abstained) + int(kept) == TEST_IMAGES
    assert float(percent) == pytest.approx(100 * int(abstained) / TEST_IMAGES, abs=0.005)
    assert 0 < int(kept) < TEST_IMAGES
    # Keeping the confident images only should not make things worse.
    overall = float(_one(ACCURACY, run.out)[1])
    assert float(kept_accuracy) >= overall


@needs_pneumonia
def test_writes_plots_and_json(run: Run) -> None:
    for name in ("confusion_matrix.png", "reliability.png"):
        path = run.folder / "figures" / name
        assert path.is_file(), f"{path} was not written"
        assert path.read_bytes().startswith(PNG_SIGNATURE)
        assert f"to {path}" in run.out

    def refuse(constant: str) -> Any:
        raise AssertionError(f"the JSON holds {constant}, which is not JSON")

    text = (run.folder / "report.json").read_text(encoding="utf-8")
    report = json.loads(text, parse_constant=refuse)
    for key in ("accuracy", "auroc", "ece", "sensitivity", "specificity"):
        assert key in report
    assert report["class_names"] == ["normal", "pneumonia"]
    assert len(report["sensitivity"]) == len(report["specificity"]) == 2
    assert report["support"] == [234, 390]
    printed_accuracy = float(_one(ACCURACY, run.out)[1])
    assert 100 * report["accuracy"] == pytest.approx(printed_accuracy, abs=0.005)
    temperature = float(re.findall(TEMPERATURE, run.out)[0])
    assert report["temperature"] == pytest.approx(temperature, abs=5e-4)
    # Empty calibration bins have no accuracy: written as null, not NaN.
    assert None in report["calibration_bins"]["accuracy"]


@pytest.fixture
def tiny_npz(tmp_path: Path) -> Path:
    """A MedMNIST-style file with two classes, so that no test here needs the real one."""
    rng = np.random.default_rng(0)
    arrays: dict[str, Any] = {}
    for split, size in (("train", 16), ("val", 8), ("test", 8)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (size, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(size) % 2).reshape(-1, 1).astype(np.uint8)
    path = tmp_path / "tiny.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(("names", "count"), [("normal,pneumonia,covid", 3), ("pneumonia", 1)])
def test_wrong_number_of_class_names_exits_1(
    example: ModuleType,
    tiny_npz: Path,
    names: str,
    count: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert example.main([str(tiny_npz), "--class-names", names, "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert err.startswith("error: --class-names gives")
    assert f"gives {count} names ({names})" in err
    assert "holds 2 classes" in err
    assert "Training:" not in out  # it gave up before training
    assert out.startswith("NOT FOR CLINICAL USE")


def test_missing_file_exits_1(
    example: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert example.main([str(tmp_path / "absent.npz"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no .npz file at")


def test_help_names_where_the_data_comes_from(example: ModuleType) -> None:
    text = " ".join(example.build_parser().format_help().split())
    assert "../shared/data/medmnist" in text
    assert "medmnist package" in text
    assert "Not for clinical use" in text
    for flag in (
        "--class-names",
        "--epochs",
        "--seed",
        "--device",
        "--min-confidence",
        "--plots",
        "--json",
        "--no-progress",
    ):
        assert flag in text

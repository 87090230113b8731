"""Run examples/medical_pneumonia.py end to end, briefly trained.

On a synthetic, learnable binary set made here (so that the medical path is tested in
any clone), and on PneumoniaMNIST when ``../shared/data`` holds it.
"""

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

from tests.conftest import SYNTHETIC_MEDICAL_SPLITS

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "medical_pneumonia.py"
# PneumoniaMNIST ships beside the repository, in ../shared; it is not part of the package.
PNEUMONIA = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "medmnist" / "pneumoniamnist.npz"
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

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


@dataclass(frozen=True)
class Data:
    """A binary MedMNIST-style file, how long to train on it and what that must reach."""

    name: str
    epochs: int
    splits: dict[str, tuple[int, int]]  # split: (normal, pneumonia) counts
    min_accuracy: float  # percent, on the test split
    min_balanced_accuracy: float  # percent
    min_auroc: float

    @property
    def test_counts(self) -> tuple[int, int]:
        return self.splits["test"]

    @property
    def test_images(self) -> int:
        return sum(self.test_counts)


SYNTHETIC = Data(
    "synthetic",
    epochs=3,
    splits={
        split: (size - positives, positives)
        for split, (size, positives) in SYNTHETIC_MEDICAL_SPLITS.items()
    },
    min_accuracy=85.0,  # about 91% after 3 epochs
    min_balanced_accuracy=80.0,
    min_auroc=0.95,  # about 0.99
)
REAL = Data(
    "pneumoniamnist",
    epochs=2,
    # PneumoniaMNIST's official splits.
    splits={"train": (1214, 3494), "val": (135, 389), "test": (234, 390)},
    min_accuracy=80.0,  # about 90% after 2 epochs, 91-93% with the full recipe
    min_balanced_accuracy=70.0,
    min_auroc=0.8,
)


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
    data: Data
    status: int
    out: str
    err: str
    folder: Path


@pytest.fixture(scope="module", params=[SYNTHETIC, REAL], ids=lambda data: data.name)
def run(
    request: pytest.FixtureRequest,
    example: ModuleType,
    tmp_path_factory: pytest.TempPathFactory,
) -> Run:
    """Train once per data set, with plots and JSON, and keep what the example printed."""
    data: Data = request.param
    if data is REAL:
        if not PNEUMONIA.is_file():
            pytest.skip(f"PneumoniaMNIST not found at {PNEUMONIA} (the project's ../shared/data)")
        path = PNEUMONIA
    else:
        path = request.getfixturevalue("synthetic_medical_npz")
    folder = tmp_path_factory.mktemp(f"medical-{data.name}")
    argv = [
        str(path),
        "--epochs",
        str(data.epochs),
        "--plots",
        str(folder / "figures"),  # does not exist yet: the example creates it
        "--json",
        str(folder / "report.json"),
    ]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = example.main(argv)
    return Run(data, status, out.getvalue(), err.getvalue(), folder)


def _one(pattern: re.Pattern[str], text: str) -> tuple[str, ...]:
    matches = pattern.findall(text)
    assert len(matches) == 1, f"expected one line matching {pattern.pattern!r} in:\n{text}"
    found: tuple[str, ...] = matches[0]
    return found


def _report(run: Run) -> dict[str, Any]:
    def refuse(constant: str) -> Any:
        raise AssertionError(f"the JSON holds {constant}, which is not JSON")

    text = (run.folder / "report.json").read_text(encoding="utf-8")
    report: dict[str, Any] = json.loads(text, parse_constant=refuse)
    return report


def test_synthetic_set_is_a_medmnist_file(synthetic_medical_npz: Path) -> None:
    with np.load(synthetic_medical_npz) as arrays:
        for split, (size, positives) in SYNTHETIC_MEDICAL_SPLITS.items():
            images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
            assert (images.shape, images.dtype) == ((size, 28, 28), np.uint8)
            assert (labels.shape, labels.dtype) == ((size, 1), np.uint8)
            assert int(labels.sum()) == positives
            # Class 1 is brighter at its brightest point, but the classes overlap.
            peaks = images.reshape(size, -1).max(axis=1)
            normal, finding = peaks[labels[:, 0] == 0], peaks[labels[:, 0] == 1]
            assert np.median(finding) > np.median(normal) + 20
            assert finding.min() < normal.max()


def test_runs_and_starts_with_the_caveat(run: Run) -> None:
    data = run.data
    assert run.status == 0, run.err
    assert run.out.startswith("NOT FOR CLINICAL USE")
    assert "research and education only" in run.out.splitlines()[0]
    # The cnn recipe with --epochs.
    assert f"Training: {data.epochs} epochs, batches of 128, sgd with lr 0.1, seed 0" in run.out
    assert re.search(r"^Training time: [\d.]+ s$", run.out, re.MULTILINE)
    for split, (normal, pneumonia) in data.splits.items():
        line = (
            rf"^  {split:<5} +{normal + pneumonia} images: normal {normal}, pneumonia {pneumonia}$"
        )
        assert re.search(line, run.out, re.MULTILINE), line
    # Progress is on by default, on stderr: one line per epoch.
    epochs = re.findall(r"epoch (\d+)/(\d+)  train_loss", run.err)
    assert epochs == [(str(epoch), str(data.epochs)) for epoch in range(1, data.epochs + 1)]


def test_prints_the_calibrated_report(run: Run) -> None:
    data = run.data
    rows = ROW.findall(run.out)
    assert [row[0] for row in rows] == ["normal", "pneumonia"]
    assert [int(row[1]) for row in rows] == list(data.test_counts)
    # For two classes one class's sensitivity is the other's specificity.
    assert rows[0][3] == rows[1][4]
    assert rows[0][4] == rows[1][3]

    images, accuracy, balanced, auroc = _one(ACCURACY, run.out)
    assert int(images) == data.test_images
    assert float(accuracy) > data.min_accuracy
    assert float(balanced) > data.min_balanced_accuracy
    assert data.min_auroc < float(auroc) <= 1.0
    assert "confusion matrix (rows actual, columns predicted):" in run.out

    # The printed rates are those of the printed confusion matrix.
    matrix = re.search(r"^normal +(\d+) +(\d+)\npneumonia +(\d+) +(\d+)$", run.out, re.MULTILINE)
    assert matrix is not None, run.out
    tn, fp, fn, tp = (int(count) for count in matrix.groups())
    assert (tn + fp, fn + tp) == data.test_counts
    assert float(accuracy) == pytest.approx(100 * (tn + tp) / data.test_images, abs=0.005)
    sensitivity, specificity = tp / (tp + fn), tn / (tn + fp)
    assert float(rows[1][3]) == pytest.approx(sensitivity, abs=5e-4)
    assert float(rows[0][3]) == pytest.approx(specificity, abs=5e-4)
    assert float(rows[1][2]) == pytest.approx(tp / max(tp + fp, 1), abs=5e-4)  # precision
    assert float(balanced) == pytest.approx(50 * (sensitivity + specificity), abs=0.005)

    # Temperature scaling does not change any predicted label, hence not the accuracy.
    ece, nll, brier, accuracy_before = _one(BEFORE, run.out)
    assert accuracy_before == accuracy
    assert 0.0 <= float(ece) <= 1.0
    assert float(nll) > 0.0
    assert 0.0 <= float(brier) <= 1.0

    (temperature,) = re.findall(TEMPERATURE, run.out)
    assert float(temperature) > 0.0
    assert float(temperature) != 1.0  # calibration fitted something
    assert f"temperature: {float(temperature):.3f}" in run.out  # the report used it


def test_abstention_accounts_for_every_test_image(run: Run) -> None:
    total_images = run.data.test_images
    threshold, abstained, total, percent, kept, kept_accuracy = _one(ABSTENTION, run.out)
    assert float(threshold) == 0.9  # the default --min-confidence
    assert int(total) == total_images
    assert int(abstained) + int(kept) == total_images
    assert float(percent) == pytest.approx(100 * int(abstained) / total_images, abs=0.005)
    assert 0 < int(kept) < total_images
    # Keeping the confident images only should not make things worse.
    overall = float(_one(ACCURACY, run.out)[1])
    assert float(kept_accuracy) >= overall


def test_writes_plots_and_json(run: Run) -> None:
    for name in ("confusion_matrix.png", "reliability.png"):
        path = run.folder / "figures" / name
        assert path.is_file(), f"{path} was not written"
        assert path.read_bytes().startswith(PNG_SIGNATURE)
        assert f"to {path}" in run.out

    report = _report(run)
    assert report["class_names"] == ["normal", "pneumonia"]
    assert report["support"] == list(run.data.test_counts)
    _, accuracy, balanced, auroc = _one(ACCURACY, run.out)
    assert 100 * report["accuracy"] == pytest.approx(float(accuracy), abs=0.005)
    assert 100 * report["balanced_accuracy"] == pytest.approx(float(balanced), abs=0.005)
    assert report["auroc"] == pytest.approx(float(auroc), abs=5e-5)
    (tn, fp), (fn, tp) = report["confusion_matrix"]
    assert report["sensitivity"] == pytest.approx([tn / (tn + fp), tp / (tp + fn)], abs=1e-6)
    assert report["specificity"] == pytest.approx([tp / (tp + fn), tn / (tn + fp)], abs=1e-6)
    temperature = float(re.findall(TEMPERATURE, run.out)[0])
    assert report["temperature"] == pytest.approx(temperature, abs=5e-4)
    ece = re.search(r"^ECE \(15 bins\): ([\d.]+)   NLL: ([\d.]+)", run.out, re.MULTILINE)
    assert ece is not None
    assert report["ece"] == pytest.approx(float(ece[1]), abs=5e-5)
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

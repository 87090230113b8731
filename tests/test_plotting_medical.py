"""The evaluation figures: confusion matrix and reliability diagram."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import digitrec

pytest.importorskip("matplotlib")
from matplotlib.patches import Rectangle

from digitrec.plotting import plot_confusion_matrix, plot_reliability_diagram

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def binary_report() -> digitrec.ClassificationReport:
    """A two-class report with every kind of cell: a CNN that has seen a little of two classes."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (300, 1, 16, 16), dtype=torch.uint8, generator=generator)
    labels = (images.double().mean(dim=(1, 2, 3)) > 127.5).long()
    images[labels == 1] = images[labels == 1] // 2 + 128  # class 1 is brighter
    data = digitrec.ImageDataset(images, labels, class_names=["normal", "pneumonia"])
    model = digitrec.DigitClassifier(
        "cnn", input_shape=(1, 16, 16), num_classes=2, class_names=["normal", "pneumonia"], seed=0
    )
    digitrec.Trainer(model, epochs=1, progress=False).fit(data[:200])
    return digitrec.evaluate(model, data[200:])


@pytest.fixture(scope="module")
def mnist_report(mnist_test: digitrec.ImageDataset) -> digitrec.ClassificationReport:
    return digitrec.evaluate(digitrec.DigitClassifier(seed=0), mnist_test[:300])


def _cell_texts(figure: object) -> list[str]:
    axes = figure.axes[0]  # type: ignore[attr-defined]
    return [text.get_text() for text in axes.texts]


@pytest.mark.parametrize("report_name", ["binary_report", "mnist_report"])
def test_confusion_matrix_annotates_the_counts(
    report_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    report: digitrec.ClassificationReport = request.getfixturevalue(report_name)
    classes = len(report.class_names)
    figure = plot_confusion_matrix(report)

    assert len(figure.axes) == 2  # the matrix and its colour bar
    axes = figure.axes[0]
    assert axes.get_xlabel() == "predicted class"
    assert axes.get_ylabel() == "actual class"
    assert [label.get_text() for label in axes.get_xticklabels()] == list(report.class_names)
    assert [label.get_text() for label in axes.get_yticklabels()] == list(report.class_names)
    assert str(report.total) in axes.get_title()

    # One annotation per cell, row by row: rows actual, columns predicted.
    texts = axes.texts
    assert len(texts) == classes * classes
    counts = torch.tensor([int(text.get_text()) for text in texts]).reshape(classes, classes)
    assert torch.equal(counts, report.confusion_matrix.to(torch.int64))
    for text in texts[:classes]:  # the first row sits at y = 0, one column per x
        assert text.get_position()[1] == 0
    assert [text.get_position()[0] for text in texts[:classes]] == list(range(classes))

    image = axes.images[0].get_array()
    assert image is not None
    assert torch.equal(torch.as_tensor(image.data).long(), report.confusion_matrix.long())

    figure.savefig(tmp_path / "matrix.png")
    assert (tmp_path / "matrix.png").read_bytes().startswith(PNG_SIGNATURE)


def test_confusion_matrix_normalized_rows_sum_to_one(
    binary_report: digitrec.ClassificationReport,
) -> None:
    figure = plot_confusion_matrix(binary_report, normalize=True)
    axes = figure.axes[0]
    values = axes.images[0].get_array()
    assert values is not None
    fractions = torch.as_tensor(values.data, dtype=torch.float64)
    assert torch.allclose(fractions.sum(dim=1), torch.ones(2, dtype=torch.float64))
    # The diagonal is the per-class sensitivity.
    assert torch.allclose(fractions.diagonal(), binary_report.sensitivity, atol=1e-6)
    assert "sensitivity" in axes.get_title()

    # Each cell reads "fraction\n(count)".
    cells = [text.split("\n") for text in _cell_texts(figure)]
    assert all(len(cell) == 2 for cell in cells)
    shown = torch.tensor([float(fraction) for fraction, _ in cells], dtype=torch.float64)
    assert torch.allclose(shown, fractions.flatten(), atol=5e-4)
    counts = torch.tensor([int(count.strip("()")) for _, count in cells])
    assert torch.equal(counts, binary_report.confusion_matrix.flatten().long())


def test_confusion_matrix_row_of_an_absent_class_is_zero(
    mnist_test: digitrec.ImageDataset,
) -> None:
    no_nines = mnist_test[:200][mnist_test[:200].labels != 9]
    report = digitrec.evaluate(digitrec.DigitClassifier(seed=0), no_nines)
    assert int(report.support[9]) == 0
    values = plot_confusion_matrix(report, normalize=True).axes[0].images[0].get_array()
    assert values is not None
    fractions = torch.as_tensor(values.data, dtype=torch.float64)
    assert not torch.isnan(fractions).any()
    assert float(fractions[9].sum()) == 0.0
    assert torch.allclose(fractions[:9].sum(dim=1), torch.ones(9, dtype=torch.float64))


def _bars(axes: object) -> list[Rectangle]:
    return [patch for patch in axes.patches if isinstance(patch, Rectangle)]  # type: ignore[attr-defined]


@pytest.mark.parametrize("report_name", ["binary_report", "mnist_report"])
def test_reliability_diagram_has_a_bar_per_non_empty_bin(
    report_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    report: digitrec.ClassificationReport = request.getfixturevalue(report_name)
    bins = report.calibration_bins
    non_empty = bins["count"] > 0
    assert 0 < int(non_empty.sum()) < 15  # the check below needs some empty bins to skip

    figure = plot_reliability_diagram(report)
    assert len(figure.axes) == 2
    top, bottom = figure.axes
    assert "ECE" in top.get_title()
    assert f"{report.ece:.4f}" in top.get_title()
    assert f"temperature {report.temperature:.3f}" in top.get_title()
    assert top.get_xlim() == (0.0, 1.0)
    assert top.get_ylim() == (0.0, 1.0)

    accuracy_bars = _bars(top)
    assert len(accuracy_bars) == int(non_empty.sum())
    heights = torch.tensor([bar.get_height() for bar in accuracy_bars], dtype=torch.float64)
    assert torch.allclose(heights, bins["accuracy"][non_empty])
    lefts = torch.tensor([bar.get_x() for bar in accuracy_bars], dtype=torch.float64)
    expected_lefts = torch.arange(15, dtype=torch.float64)[non_empty] / 15
    assert torch.allclose(lefts, expected_lefts)
    assert all(not math.isnan(height) for height in heights.tolist())

    # The diagonal of perfect calibration, and one mean-confidence marker per shown bin.
    lines = {line.get_label(): line for line in top.get_lines()}
    diagonal = lines["perfect calibration"]
    assert np.asarray(diagonal.get_xdata()).tolist() == [0, 1]
    assert np.asarray(diagonal.get_ydata()).tolist() == [0, 1]
    confidence = torch.as_tensor(np.asarray(lines["mean confidence"].get_ydata(), dtype=np.float64))
    assert torch.allclose(confidence, bins["confidence"][non_empty])

    count_bars = _bars(bottom)
    assert [int(bar.get_height()) for bar in count_bars] == bins["count"][non_empty].tolist()
    assert sum(int(bar.get_height()) for bar in count_bars) == report.total

    figure.savefig(tmp_path / "reliability.png")
    assert (tmp_path / "reliability.png").read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.parametrize("function", [plot_confusion_matrix, plot_reliability_diagram])
@pytest.mark.parametrize(
    "wrong", [None, {"accuracy": 0.9}, digitrec.AccuracyResult(total=10, correct=9)]
)
def test_plots_refuse_what_is_not_a_report(function: object, wrong: object) -> None:
    with pytest.raises(digitrec.InvalidTypeError, match="ClassificationReport"):
        function(wrong)  # type: ignore[operator]


def test_plots_refuse_report_dicts(binary_report: digitrec.ClassificationReport) -> None:
    with pytest.raises(digitrec.InvalidTypeError, match=r"evaluate.*got dict"):
        plot_reliability_diagram(binary_report.to_dict())  # type: ignore[arg-type]
    with pytest.raises(digitrec.InvalidTypeError, match="normalize must be a bool"):
        plot_confusion_matrix(binary_report, normalize="yes")  # type: ignore[arg-type]

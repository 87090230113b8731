from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import digitrec

pytest.importorskip("matplotlib")
from digitrec.plotting import plot_loss_curve, plot_predictions

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_loss_curve(tmp_path: Path) -> None:
    figure = plot_loss_curve(
        digitrec.History(train_loss=[0.9, 0.4, 0.2], val_accuracy=[0.8, 0.9, 0.95])
    )
    line = figure.axes[0].get_lines()[0]
    assert list(np.asarray(line.get_ydata())) == [0.9, 0.4, 0.2]
    assert list(np.asarray(line.get_xdata())) == [1, 2, 3]
    assert figure.axes[1].get_ylabel() == "validation accuracy (%)"
    figure.savefig(tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes().startswith(PNG_SIGNATURE)
    with pytest.raises(digitrec.InvalidTypeError, match="History"):
        plot_loss_curve([0.9, 0.4])  # type: ignore[arg-type]


def test_predictions_mark_mistakes(mnist_test: digitrec.ImageDataset, tmp_path: Path) -> None:
    model = digitrec.DigitClassifier(seed=0)  # untrained: plenty of mistakes
    sample = mnist_test[:12]
    figure = plot_predictions(model, sample, count=12, columns=4)
    assert len(figure.axes) == 12
    predicted = digitrec.predict(model, sample)
    wrong = int((predicted != sample.labels).sum())
    assert wrong > 0
    titles = [axes.get_title() for axes in figure.axes]
    assert titles[0] == f"pred {int(predicted[0])} / true 7"
    thick = [axes for axes in figure.axes if axes.spines["left"].get_linewidth() == 3]
    assert len(thick) == wrong
    figure.savefig(tmp_path / "predictions.png")
    assert (tmp_path / "predictions.png").stat().st_size > 1000


def test_predictions_count_is_capped_and_rgb_works() -> None:
    images = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    data = digitrec.ImageDataset(images, torch.tensor([0, 1, 0]), class_names=["cat", "dog"])
    model = digitrec.DigitClassifier("cnn", input_shape=(3, 16, 16), num_classes=2, seed=0)
    figure = plot_predictions(model, data, count=50)
    assert len(figure.axes) == 3
    assert all("true" in axes.get_title() for axes in figure.axes)
    assert any(name in figure.axes[0].get_title() for name in ("cat", "dog"))

"""Figures for training and predictions (needs the ``plot`` extra: matplotlib).

The functions build :class:`matplotlib.figure.Figure` objects without pyplot, so
they work in scripts, servers and notebooks alike and never open a window;
call ``fig.savefig(path)`` to write one, or display it in a notebook.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from ._checks import check_labelled_data, check_model, check_positive_int
from ._device import DeviceLike
from .data import ImageDataset
from .errors import InvalidTypeError, MissingDependencyError
from .inference import predict
from .models import DigitClassifier
from .training import History

try:
    from matplotlib.figure import Figure
except ImportError as error:  # pragma: no cover - exercised only without matplotlib
    raise MissingDependencyError(
        "digitrec.plotting needs matplotlib: pip install 'digitrec[plot]'"
    ) from error

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_loss_curve", "plot_predictions"]

_CORRECT_COLOR = "tab:green"
_WRONG_COLOR = "tab:red"


def plot_loss_curve(history: History) -> Figure:
    """Plot the training loss per epoch, and the validation accuracy when recorded.

    Args:
        history: The :class:`~digitrec.History` returned by :meth:`Trainer.fit`.

    Returns:
        The figure.

    Example:
        >>> from digitrec.plotting import plot_loss_curve
        >>> fig = plot_loss_curve(digitrec.History(train_loss=[0.5, 0.3, 0.2]))
        >>> fig.axes[0].get_ylabel()
        'training loss'
    """
    if not isinstance(history, History):
        raise InvalidTypeError(f"history must be a digitrec.History, got {type(history).__name__}")
    figure = Figure(figsize=(6, 4), layout="constrained")
    axes: Axes = figure.add_subplot()
    epochs = range(1, history.epochs + 1)
    axes.plot(epochs, history.train_loss, marker="o", color="tab:blue", label="training loss")
    axes.set_xlabel("epoch")
    axes.set_ylabel("training loss")
    axes.set_title("Training loss per epoch")
    axes.grid(alpha=0.3)
    if history.val_accuracy:
        accuracy_axes = axes.twinx()
        accuracy_axes.plot(
            epochs,
            [100 * a for a in history.val_accuracy],
            marker="s",
            color="tab:orange",
            label="validation accuracy",
        )
        accuracy_axes.set_ylabel("validation accuracy (%)")
    return figure


def plot_predictions(
    model: DigitClassifier,
    data: ImageDataset,
    *,
    count: int = 16,
    columns: int = 8,
    device: DeviceLike = "cpu",
) -> Figure:
    """Show the first ``count`` images of ``data`` with predicted and actual labels.

    Titles read ``pred P / true T``; mistakes get a red title and a thick red frame.

    Args:
        model: The classifier.
        data: Labelled images that fit the model.
        count: How many images to show (at most ``len(data)``).
        columns: Images per row.
        device: Where to compute the predictions.

    Returns:
        The figure.

    Example:
        >>> from digitrec.plotting import plot_predictions
        >>> model = digitrec.DigitClassifier(seed=0)
        >>> fig = plot_predictions(model, digitrec.load_mnist("test"), count=4)
        >>> len(fig.axes)
        4
    """
    model = check_model(model)
    data = check_labelled_data(model, data)
    count = min(check_positive_int(count, "count"), len(data))
    columns = min(check_positive_int(columns, "columns"), count)
    sample = data[:count]
    predicted = predict(model, sample, device=device)
    names = data.class_names or tuple(str(k) for k in range(model.num_classes))
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(1.4 * columns, 1.6 * rows), layout="constrained")
    for index in range(count):
        axes: Axes = figure.add_subplot(rows, columns, index + 1)
        image, actual = sample[index]
        axes.imshow(_displayable(image), cmap="gray" if image.shape[0] == 1 else None)
        guess = int(predicted[index])
        color = _CORRECT_COLOR if guess == actual else _WRONG_COLOR
        axes.set_title(f"pred {names[guess]} / true {names[actual]}", fontsize=8, color=color)
        axes.set_xticks([])
        axes.set_yticks([])
        # A thick coloured frame marks each image right or wrong without relying on text colour.
        for spine in axes.spines.values():
            spine.set_edgecolor(color)
            spine.set_linewidth(1 if guess == actual else 3)
    return figure


def _displayable(image: torch.Tensor) -> Any:
    pixels = image.permute(1, 2, 0).numpy()
    return pixels[:, :, 0] if pixels.shape[2] == 1 else pixels

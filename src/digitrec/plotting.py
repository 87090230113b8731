"""Figures for training, predictions and evaluation (needs the ``plot`` extra: matplotlib).

The functions build :class:`matplotlib.figure.Figure` objects without pyplot, so
they work in scripts, servers and notebooks alike and never open a window;
call ``fig.savefig(path)`` to write one, or display it in a notebook.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from . import _images
from ._checks import check_positive_int
from ._device import DeviceLike
from .data import ImageDataset
from .errors import InvalidInputError, InvalidTypeError, MissingDependencyError
from .evaluation import ClassificationReport
from .inference import predict
from .models import DigitClassifier
from .models._validate import check_labelled_data, check_model
from .training import History

try:
    from matplotlib.figure import Figure
except ImportError as error:  # pragma: no cover - exercised only without matplotlib
    raise MissingDependencyError(
        "digitrec.plotting needs matplotlib: pip install 'digitrec[plot]'"
    ) from error

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "plot_confusion_matrix",
    "plot_explanation",
    "plot_loss_curve",
    "plot_predictions",
    "plot_reliability_diagram",
]

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
    device: DeviceLike | None = None,
) -> Figure:
    """Show the first ``count`` images of ``data`` with predicted and actual labels.

    Titles read ``pred P / true T``; mistakes get a red title and a thick red frame.

    Args:
        model: The classifier.
        data: Labelled images that fit the model.
        count: How many images to show (at most ``len(data)``).
        columns: Images per row.
        device: Where to compute the predictions; ``None``: where the model is.

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


def _check_report(report: object) -> ClassificationReport:
    if not isinstance(report, ClassificationReport):
        raise InvalidTypeError(
            "report must be a digitrec.ClassificationReport (from digitrec.evaluate), "
            f"got {type(report).__name__}"
        )
    return report


def plot_confusion_matrix(report: ClassificationReport, *, normalize: bool = False) -> Figure:
    """Show the confusion matrix of a report, each cell annotated with its count.

    Rows are the actual classes and columns the predicted ones, labelled with the
    report's class names. With ``normalize=True`` the colours and the first line
    of each cell are row fractions: the share of each actual class given each
    label, so the diagonal holds the per-class sensitivity; the count follows in
    brackets. A class with no images has a row of zeros.

    Args:
        report: The :class:`~digitrec.ClassificationReport` from :func:`~digitrec.evaluate`.
        normalize: Show row fractions instead of counts.

    Returns:
        The figure, with the matrix and its colour bar as its two axes.

    Raises:
        InvalidTypeError: If ``report`` is not a ClassificationReport.

    Example:
        >>> from digitrec.plotting import plot_confusion_matrix
        >>> report = digitrec.evaluate(digitrec.DigitClassifier(seed=0),
        ...                            digitrec.load_mnist("test")[:200])
        >>> fig = plot_confusion_matrix(report)
        >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
        ('predicted class', 'actual class')
        >>> sum(int(text.get_text()) for text in fig.axes[0].texts)
        200
    """
    report = _check_report(report)
    if not isinstance(normalize, bool):
        raise InvalidTypeError(f"normalize must be a bool, got {type(normalize).__name__}")
    counts = report.confusion_matrix.to(torch.int64)
    names = report.class_names
    classes = len(names)
    rows = counts.sum(dim=1, keepdim=True).to(torch.float64)
    fractions = torch.where(rows > 0, counts / rows.clamp(min=1), torch.zeros(()))
    values = fractions if normalize else counts.to(torch.float64)
    size = max(4.0, 0.6 * classes + 2.5)
    figure = Figure(figsize=(size + 1.0, size), layout="constrained")
    axes: Axes = figure.add_subplot()
    image = axes.imshow(values.numpy(), cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None)
    colorbar = figure.colorbar(image, ax=axes)
    colorbar.set_label("fraction of the actual class" if normalize else "images")
    # Dark cells get white text; the threshold is half of the colour scale.
    threshold = 0.5 if normalize else 0.5 * float(values.max())
    font = 10 if classes <= 5 else 8 if classes <= 10 else 6
    for row in range(classes):
        for column in range(classes):
            count = int(counts[row, column])
            value = float(values[row, column])
            text = f"{value:.3f}\n({count})" if normalize else str(count)
            axes.text(
                column,
                row,
                text,
                ha="center",
                va="center",
                fontsize=font,
                color="white" if value > threshold else "black",
            )
    # Long names under many columns would overlap: slant them.
    slanted = classes > 3 and max(len(name) for name in names) > 3
    axes.set_xticks(
        range(classes), names, rotation=45 if slanted else 0, ha="right" if slanted else "center"
    )
    axes.set_yticks(range(classes), names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("actual class")
    title = (
        "Confusion matrix, row fractions (diagonal: sensitivity)"
        if normalize
        else f"Confusion matrix ({report.total} images)"
    )
    axes.set_title(title)
    return figure


def plot_reliability_diagram(report: ClassificationReport) -> Figure:
    """Show how well a report's confidences match its accuracy (a reliability diagram).

    The top panel has one bar per non-empty confidence bin (the report's 15
    equal bins of ``[0, 1]``) whose height is the accuracy of the images in it,
    a marker at the bin's mean confidence, and the diagonal of perfect
    calibration: a bar below its marker means over-confidence, above it
    under-confidence. The bottom panel shows how many images fall in each bin.
    The title gives the expected calibration error and the softmax temperature.

    Args:
        report: The :class:`~digitrec.ClassificationReport` from :func:`~digitrec.evaluate`.

    Returns:
        The figure, with the reliability panel above the histogram of bin counts.

    Raises:
        InvalidTypeError: If ``report`` is not a ClassificationReport.

    Example:
        >>> from digitrec.plotting import plot_reliability_diagram
        >>> report = digitrec.evaluate(digitrec.DigitClassifier(seed=0),
        ...                            digitrec.load_mnist("test")[:200])
        >>> fig = plot_reliability_diagram(report)
        >>> len(fig.axes), fig.axes[1].get_xlabel()
        (2, 'confidence (top-class probability)')
        >>> fig.axes[0].get_title()
        'Reliability: ECE ..., temperature 1.000'
    """
    report = _check_report(report)
    bins = report.calibration_bins
    count = bins["count"].to(torch.int64)
    edges = torch.linspace(0.0, 1.0, len(count) + 1, dtype=torch.float64)
    width = float(edges[1] - edges[0])
    shown = count > 0
    left = edges[:-1][shown].tolist()
    centers = [x + width / 2 for x in left]
    figure = Figure(figsize=(6, 6.5), layout="constrained")
    top: Axes
    bottom: Axes
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    top.bar(
        left,
        bins["accuracy"][shown].tolist(),
        width=width,
        align="edge",
        color="tab:blue",
        edgecolor="black",
        alpha=0.8,
        label="accuracy",
    )
    top.plot(
        centers,
        bins["confidence"][shown].tolist(),
        linestyle="none",
        marker="D",
        color="tab:red",
        label="mean confidence",
    )
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.grid(alpha=0.3)
    top.legend(loc="upper left")
    top.set_title(f"Reliability: ECE {report.ece:.4f}, temperature {report.temperature:.3f}")
    bottom.bar(
        left,
        count[shown].tolist(),
        width=width,
        align="edge",
        color="tab:gray",
        edgecolor="black",
    )
    bottom.set_xlabel("confidence (top-class probability)")
    bottom.set_ylabel("images")
    bottom.grid(alpha=0.3)
    return figure


def plot_explanation(
    image: Any,
    attributions: Any,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    cmap: str = "RdBu_r",
) -> Figure:
    """Overlay pixel attributions (from :func:`~digitrec.explain.explain`) on their image.

    The image is drawn in grey (an RGB image as the mean of its channels) and the
    attributions over it, half transparent, on a diverging colour map whose limits
    are symmetric around zero: with the default map, red pixels pushed the model
    towards the explained class and blue ones away from it; white is neutral. The
    attributions of a multi-channel image are summed over the channels. A colour
    bar gives the scale.

    Args:
        image: One image, a tensor or numpy array of shape ``(H, W)``, ``(C, H, W)``
            or ``(H, W, C)`` with ``uint8`` (0-255) or float (0-1) pixels.
        attributions: The image's attributions, shape ``(H, W)`` or ``(C, H, W)``.
        ax: Axes to draw into; ``None`` makes a new figure.
        title: Title of the axes; ``None`` leaves it empty.
        cmap: Name of a diverging matplotlib colour map.

    Returns:
        The figure holding the axes (the new one, or ``ax``'s), with the colour bar.

    Raises:
        InvalidInputError: If the shapes do not match or the attributions are not finite.
        InvalidTypeError: For unsupported array types or dtypes.

    Example:
        >>> from digitrec.plotting import plot_explanation
        >>> model = digitrec.DigitClassifier(seed=0)
        >>> image, label = digitrec.load_mnist("test")[0]
        >>> fig = plot_explanation(image, digitrec.explain(model, image), title=f"label {label}")
        >>> len(fig.axes), fig.axes[0].get_title(), fig.axes[1].get_ylabel()
        (2, 'label 7', 'attribution')
    """
    pixels = _images.as_single_image(image, 1)[0]
    if pixels.dtype == torch.uint8:
        pixels = pixels.to(torch.float32) / 255.0
    pixels = pixels.mean(dim=0, keepdim=True)
    height, width = pixels.shape[1:]
    scores = attributions.detach() if isinstance(attributions, torch.Tensor) else attributions
    try:
        scores = torch.as_tensor(scores, dtype=torch.float64).cpu()
    except (TypeError, ValueError, RuntimeError) as error:
        raise InvalidTypeError(
            "attributions must be a torch.Tensor or numpy array of numbers, "
            f"got {type(attributions).__name__}"
        ) from error
    if scores.dim() == 3:
        scores = scores.sum(dim=0)
    if tuple(scores.shape) != (height, width):
        raise InvalidInputError(
            f"attributions must have shape (H, W) or (C, H, W) with (H, W) = {(height, width)} "
            f"like the image, got {tuple(scores.shape)}"
        )
    if not bool(torch.isfinite(scores).all()):
        raise InvalidInputError("attributions must be finite, got NaN or infinite values")
    if ax is None:
        figure = Figure(figsize=(4.5, 4), layout="constrained")
        ax = figure.add_subplot()
    parent = ax.figure
    # A limit of zero would give matplotlib an empty colour range.
    limit = float(scores.abs().max()) if scores.numel() else 0.0
    limit = limit or 1.0
    ax.imshow(_displayable(pixels), cmap="gray", vmin=0.0, vmax=1.0)
    overlay = ax.imshow(scores.numpy(), cmap=cmap, vmin=-limit, vmax=limit, alpha=0.6)
    colorbar = parent.colorbar(overlay, ax=ax)
    colorbar.set_label("attribution")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title)
    return parent if isinstance(parent, Figure) else parent.figure


def _displayable(image: torch.Tensor) -> Any:
    pixels = image.permute(1, 2, 0).numpy()
    return pixels[:, :, 0] if pixels.shape[2] == 1 else pixels

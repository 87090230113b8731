"""Operating points: the threshold for a target sensitivity, chosen on validation data.

A screening reader fixes how many cases may be missed, not a probability: the
threshold on the positive class's probability is chosen on the validation
split so that it finds at least the target share of positives, then measured
on the test split, where the sensitivity it gives is the honest figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._checks import check_int, check_number
from .._device import DeviceLike
from ..data import ImageDataset
from ..errors import InvalidInputError, InvalidTypeError
from ..models import DigitClassifier
from ._predictions import probabilities

__all__ = ["OperatingPoint", "choose_threshold", "measure_threshold", "threshold_for_sensitivity"]


def threshold_for_sensitivity(scores: Any, targets: Any, sensitivity: float) -> float:
    """The highest threshold at which ``scores >= threshold`` finds ``sensitivity`` of positives.

    Args:
        scores: Scores ``(N,)`` (probabilities or logits), higher meaning positive.
        targets: 0/1 (or boolean) truth ``(N,)``, at least one positive.
        sensitivity: Target share of positives found, in ``(0, 1]``.

    Returns:
        The score of the ``ceil(sensitivity * positives)``-th highest positive.

    Raises:
        InvalidInputError: For shapes that disagree, no positive, or a target
            outside ``(0, 1]``.

    Example:
        >>> scores = [0.9, 0.8, 0.7, 0.4, 0.3, 0.2]
        >>> digitrec.evaluation.threshold_for_sensitivity(scores, [1, 1, 0, 1, 0, 1], 0.75)
        0.4
    """
    target = check_number(sensitivity, "sensitivity", low=0.0, high=1.0, low_open=True)
    values = np.asarray(torch.as_tensor(scores, dtype=torch.float64).detach().cpu().numpy())
    truth = np.asarray(torch.as_tensor(targets).detach().cpu().numpy())
    if values.ndim != 1 or truth.shape != values.shape:
        raise InvalidInputError(
            f"scores and targets must both have shape (N,), got {values.shape} and {truth.shape}"
        )
    positives = np.sort(values[truth.astype(bool)])[::-1]
    if len(positives) == 0:
        raise InvalidInputError("targets hold no positive, so no sensitivity can be reached")
    # Rounded first so that 0.9 of 10 positives asks for 9, not 10 by float error.
    needed = max(1, math.ceil(round(target * len(positives), 9)))
    return float(positives[needed - 1])


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold on the positive class's probability and what it gives on some data.

    Attributes:
        threshold: Images whose positive probability is at least this are called positive.
        sensitivity: Share of positive images called positive.
        specificity: Share of negative images called negative.
        positives: Number of positive images measured.
        negatives: Number of negative images measured.
        positive: The positive class.
        target_sensitivity: The sensitivity the threshold was chosen for, if any.

    Example:
        >>> point = digitrec.evaluation.OperatingPoint(0.31, 0.95, 0.82, 390, 234, 1, 0.95)
        >>> print(point)
        threshold 0.3100: sensitivity 0.9500 (of 390), specificity 0.8200 (of 234)
    """

    threshold: float
    sensitivity: float
    specificity: float
    positives: int
    negatives: int
    positive: int
    target_sensitivity: float | None = None

    def __str__(self) -> str:
        return (
            f"threshold {self.threshold:.4f}: sensitivity {self.sensitivity:.4f} "
            f"(of {self.positives}), specificity {self.specificity:.4f} (of {self.negatives})"
        )


def _rates(
    scores: torch.Tensor, actual: torch.Tensor, threshold: float
) -> tuple[float, float, int, int]:
    called = scores >= threshold
    positives, negatives = int(actual.sum()), int((~actual).sum())
    sensitivity = float((called & actual).sum()) / positives if positives else math.nan
    specificity = float((~called & ~actual).sum()) / negatives if negatives else math.nan
    return sensitivity, specificity, positives, negatives


def _positive_scores(
    model: DigitClassifier,
    data: ImageDataset,
    positive: int,
    device: DeviceLike | None,
    batch_size: int,
    what: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(data, ImageDataset):
        raise InvalidTypeError(f"{what} must be a digitrec.ImageDataset, got {type(data).__name__}")
    probs = probabilities(model, data, device, batch_size, what)
    check_int(positive, "positive", minimum=0)
    if positive >= probs.shape[1]:
        raise InvalidInputError(f"positive must be < {probs.shape[1]} classes, got {positive}")
    return probs[:, positive], data.labels == positive


def choose_threshold(
    model: DigitClassifier,
    val: ImageDataset,
    *,
    sensitivity: float = 0.95,
    positive: int = 1,
    device: DeviceLike | None = None,
    batch_size: int = 1024,
) -> OperatingPoint:
    """Choose, on validation data, the threshold that reaches a target sensitivity.

    The threshold is on the calibrated probability of ``positive`` (the model's
    temperature applied): calibrate first, since a later temperature moves it.
    Measure it on the test split with :func:`measure_threshold`.

    Args:
        model: The classifier.
        val: Labelled validation images (never the test split).
        sensitivity: The target share of positives found, in ``(0, 1]``.
        positive: The positive class.
        device: Where to compute; ``None``: where the model is.
        batch_size: Images per forward pass.

    Returns:
        The :class:`OperatingPoint` with its sensitivity and specificity on ``val``.

    Raises:
        InvalidInputError: If ``val`` holds no positive or does not fit the model.

    Example:
        >>> model = digitrec.DigitClassifier(num_classes=2, seed=0)
        >>> data = digitrec.load_mnist("test")[:300]
        >>> data = digitrec.ImageDataset(data.images, (data.labels == 1).long())
        >>> point = digitrec.evaluation.choose_threshold(model, data, sensitivity=0.9)
        >>> point.sensitivity >= 0.9
        True
    """
    scores, actual = _positive_scores(model, val, positive, device, batch_size, "val")
    threshold = threshold_for_sensitivity(scores, actual, sensitivity)
    sens, spec, positives, negatives = _rates(scores, actual, threshold)
    return OperatingPoint(threshold, sens, spec, positives, negatives, positive, sensitivity)


def measure_threshold(
    model: DigitClassifier,
    data: ImageDataset,
    threshold: float | OperatingPoint,
    *,
    positive: int | None = None,
    device: DeviceLike | None = None,
    batch_size: int = 1024,
) -> OperatingPoint:
    """Measure a threshold's sensitivity and specificity on (test) data.

    Args:
        model: The classifier.
        data: Labelled images, e.g. the test split.
        threshold: A probability, or an :class:`OperatingPoint` from :func:`choose_threshold`.
        positive: The positive class; ``None``: the point's, or 1.
        device: Where to compute; ``None``: where the model is.
        batch_size: Images per forward pass.

    Returns:
        The :class:`OperatingPoint` on ``data``.

    Raises:
        InvalidInputError: If the data does not fit the model.

    Example:
        >>> model = digitrec.DigitClassifier(num_classes=2, seed=0)
        >>> data = digitrec.load_mnist("test")[:300]
        >>> data = digitrec.ImageDataset(data.images, (data.labels == 1).long())
        >>> digitrec.evaluation.measure_threshold(model, data, 0.0).sensitivity
        1.0
    """
    target = None
    if isinstance(threshold, OperatingPoint):
        target = threshold.target_sensitivity
        positive = threshold.positive if positive is None else positive
        threshold = threshold.threshold
    value = check_number(threshold, "threshold")
    positive = 1 if positive is None else positive
    scores, actual = _positive_scores(model, data, positive, device, batch_size, "data")
    sens, spec, positives, negatives = _rates(scores, actual, value)
    return OperatingPoint(value, sens, spec, positives, negatives, positive, target)

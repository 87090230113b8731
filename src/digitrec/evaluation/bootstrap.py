"""Percentile-bootstrap confidence intervals for the figures a report cites.

The model predicts once; every resample then re-weights those predictions
(image ``i`` drawn ``w[b, i]`` times in resample ``b``), so a thousand resamples
cost a few array operations, not a thousand passes. With groups (patients,
studies) whole groups are drawn, since images of one patient are not
independent and an interval over images would be too narrow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import torch

from .._checks import check_int, check_number, check_positive_int
from .._device import DeviceLike
from ..data import ImageDataset
from ..data._groups import groups_array
from ..errors import InvalidInputError, InvalidTypeError
from ..models import DigitClassifier
from ._predictions import probabilities

__all__ = ["BootstrapMetric", "BootstrapReport", "Interval", "bootstrap_ci", "bootstrap_ci_from"]

#: The figures :func:`bootstrap_ci` can give an interval for. Sensitivity,
#: specificity, PPV and NPV are those of the ``positive`` class against the rest.
BootstrapMetric = Literal[
    "accuracy", "balanced_accuracy", "auroc", "sensitivity", "specificity", "ppv", "npv"
]
_METRICS: tuple[str, ...] = get_args(BootstrapMetric)
_DEFAULT: tuple[BootstrapMetric, ...] = ("accuracy", "auroc", "sensitivity", "specificity")


@dataclass(frozen=True)
class Interval:
    """A figure and its confidence interval.

    Attributes:
        estimate: The figure on all the data.
        low: The interval's lower end (``nan`` when no resample defined it).
        high: The interval's upper end.

    Example:
        >>> print(digitrec.evaluation.Interval(0.9135, 0.8910, 0.9343))
        0.9135 (0.8910 to 0.9343)
    """

    estimate: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.estimate:.4f} ({self.low:.4f} to {self.high:.4f})"


@dataclass(frozen=True)
class BootstrapReport:
    """Figures with percentile-bootstrap confidence intervals, from :func:`bootstrap_ci`.

    Attributes:
        intervals: Each metric's :class:`Interval`, in the order asked for.
        confidence: The intervals' confidence level, e.g. 0.95.
        n_resamples: The number of bootstrap resamples.
        unit: ``"images"`` or ``"groups"``: what was drawn with replacement.
        n_units: How many images or groups the data holds.
        positive: The class whose sensitivity, specificity, PPV and NPV are given.

    Example:
        >>> report = digitrec.evaluation.bootstrap_ci_from(
        ...     torch.tensor([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]]),
        ...     torch.tensor([0, 1, 1, 1]), metrics=["accuracy"], n_resamples=200)
        >>> report["accuracy"].estimate
        0.75
    """

    intervals: dict[str, Interval]
    confidence: float
    n_resamples: int
    unit: Literal["images", "groups"]
    n_units: int
    positive: int

    def __getitem__(self, metric: str) -> Interval:
        return self.intervals[metric]

    def to_dict(self) -> dict[str, Any]:
        """Return plain values for JSON (``nan`` as ``None``).

        Example:
            >>> report = digitrec.evaluation.bootstrap_ci_from(
            ...     torch.tensor([[0.9, 0.1], [0.2, 0.8]]), torch.tensor([0, 1]),
            ...     metrics=["accuracy"], n_resamples=10)
            >>> report.to_dict()["intervals"]["accuracy"]["estimate"]
            1.0
        """

        def plain(value: float) -> float | None:
            return None if math.isnan(value) else value

        return {
            "intervals": {
                name: {
                    "estimate": plain(i.estimate),
                    "low": plain(i.low),
                    "high": plain(i.high),
                }
                for name, i in self.intervals.items()
            },
            "confidence": self.confidence,
            "n_resamples": self.n_resamples,
            "unit": self.unit,
            "n_units": self.n_units,
            "positive": self.positive,
        }

    def __str__(self) -> str:
        width = max(len(name) for name in self.intervals)
        lines = [
            f"{100 * self.confidence:g}% percentile-bootstrap intervals, {self.n_resamples} "
            f"resamples of {self.n_units} {self.unit}:"
        ]
        lines += [f"  {name:<{width}}  {interval}" for name, interval in self.intervals.items()]
        return "\n".join(lines)


def _weighted_auroc(
    weights: np.ndarray[Any, Any], scores: np.ndarray[Any, Any], positive: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """ROC AUC of each row of ``weights`` (ties count half), by the Mann-Whitney statistic."""
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ranked = weights[:, order]
    is_positive = positive[order]
    pos = np.add.reduceat(ranked * is_positive, starts, axis=1)
    neg = np.add.reduceat(ranked * ~is_positive, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        result: np.ndarray[Any, Any] = (pos * (below + 0.5 * neg)).sum(axis=1) / pairs
    return np.where(pairs > 0, result, np.nan)


def _ratio(top: np.ndarray[Any, Any], bottom: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1), np.nan)


def _nanmean(rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Column means over the defined values; ``nan`` where none is (no warning)."""
    defined = ~np.isnan(rows)
    total = np.where(defined, rows, 0.0).sum(axis=0)
    return _ratio(total, defined.sum(axis=0))


def _metric(
    name: str,
    weights: np.ndarray[Any, Any],
    probs: np.ndarray[Any, Any],
    labels: np.ndarray[Any, Any],
    positive: int,
) -> np.ndarray[Any, Any]:
    """The metric for each row of ``weights`` (per-image counts of a resample)."""
    predicted = probs.argmax(axis=1)
    if name == "accuracy":
        return _ratio(weights @ (predicted == labels), weights.sum(axis=1))
    if name == "balanced_accuracy":
        recalls = [
            _ratio(weights @ ((predicted == c) & (labels == c)), weights @ (labels == c))
            for c in range(probs.shape[1])
        ]
        return _nanmean(np.stack(recalls))
    if name == "auroc":
        classes = [positive] if probs.shape[1] == 2 else range(probs.shape[1])
        aucs = np.stack([_weighted_auroc(weights, probs[:, c], labels == c) for c in classes])
        return _nanmean(aucs)
    actual, called = labels == positive, predicted == positive
    top, bottom = {
        "sensitivity": (actual & called, actual),
        "specificity": (~actual & ~called, ~actual),
        "ppv": (actual & called, called),
        "npv": (~actual & ~called, ~called),
    }[name]
    return _ratio(weights @ top, weights @ bottom)


def bootstrap_ci_from(
    probs: torch.Tensor | np.ndarray[Any, Any],
    labels: torch.Tensor | np.ndarray[Any, Any],
    *,
    metrics: Sequence[BootstrapMetric] = _DEFAULT,
    groups: Any = None,
    positive: int = 1,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapReport:
    """Percentile-bootstrap intervals from predictions already made.

    Resample ``b`` draws ``n`` images with replacement, as
    ``np.random.default_rng(seed).integers(0, n, (n_resamples, n))`` (groups
    instead of images when ``groups`` is given); the interval is the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` percentiles of the
    resamples' values (linear interpolation), leaving out resamples where the
    metric is undefined (e.g. sensitivity of a resample without a positive).

    Args:
        probs: Class probabilities ``(N, classes)``, e.g. an ensemble's mean.
        labels: Integer labels ``(N,)``.
        metrics: Names from :data:`BootstrapMetric`.
        groups: Optional identifier per image: whole groups are drawn.
        positive: The class counted as positive (ROC AUC for two classes,
            sensitivity, specificity, PPV, NPV).
        n_resamples: Number of resamples, at least 1.
        confidence: Confidence level in ``(0, 1)``.
        seed: Seed of the resampling.

    Returns:
        The :class:`BootstrapReport`.

    Raises:
        InvalidInputError: For unknown metrics, shapes that disagree or bad settings.

    Example:
        >>> probs = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.6, 0.4]] * 25)
        >>> labels = torch.tensor([0, 1, 1, 1] * 25)
        >>> report = digitrec.evaluation.bootstrap_ci_from(probs, labels, seed=0)
        >>> report["sensitivity"].estimate, report["specificity"].estimate
        (0.6666666666666666, 1.0)
        >>> report["sensitivity"].low < 0.6667 < report["sensitivity"].high
        True
    """
    scores = np.asarray(torch.as_tensor(probs, dtype=torch.float64).detach().cpu().numpy())
    truth = np.asarray(torch.as_tensor(labels).detach().cpu().numpy())
    if scores.ndim != 2 or truth.shape != (scores.shape[0],) or scores.shape[0] == 0:
        raise InvalidInputError(
            f"probs must be (N, classes) and labels (N,) with N >= 1, got {scores.shape} "
            f"and {truth.shape}"
        )
    unknown = [name for name in metrics if name not in _METRICS]
    if unknown or not metrics:
        raise InvalidInputError(f"metrics must be some of {_METRICS}, got {list(metrics)!r}")
    check_int(positive, "positive", minimum=0)
    if positive >= scores.shape[1]:
        raise InvalidInputError(f"positive must be < {scores.shape[1]} classes, got {positive}")
    resamples = check_positive_int(n_resamples, "n_resamples")
    level = check_number(confidence, "confidence", low=0.0, high=1.0, low_open=True, high_open=True)
    rng = np.random.default_rng(check_int(seed, "seed", minimum=0))
    count = scores.shape[0]
    if groups is None:
        codes, units = np.arange(count), count
    else:
        _, inverse = np.unique(groups_array(groups, count), return_inverse=True)
        codes, units = np.asarray(inverse).reshape(-1), int(np.max(inverse)) + 1
    drawn = rng.integers(0, units, (resamples, units))
    offsets = (drawn + units * np.arange(resamples)[:, None]).ravel()
    unit_weights = np.bincount(offsets, minlength=resamples * units).reshape(resamples, units)
    weights = unit_weights[:, codes].astype(np.float64)
    full = np.ones((1, count))
    tails = 100 * np.array([(1 - level) / 2, (1 + level) / 2])
    intervals: dict[str, Interval] = {}
    for name in metrics:
        estimate = float(_metric(name, full, scores, truth, positive)[0])
        values = _metric(name, weights, scores, truth, positive)
        values = values[~np.isnan(values)]
        low, high = np.percentile(values, tails) if len(values) else (math.nan, math.nan)
        intervals[name] = Interval(estimate, float(low), float(high))
    return BootstrapReport(
        intervals=intervals,
        confidence=level,
        n_resamples=resamples,
        unit="images" if groups is None else "groups",
        n_units=units,
        positive=positive,
    )


def bootstrap_ci(
    model: DigitClassifier,
    data: ImageDataset,
    *,
    metrics: Sequence[BootstrapMetric] = _DEFAULT,
    groups: Any = None,
    positive: int = 1,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    device: DeviceLike | None = None,
    batch_size: int = 1024,
) -> BootstrapReport:
    """Measure a model with percentile-bootstrap confidence intervals a reader can cite.

    The model predicts each image once (calibrated probabilities, its
    temperature applied); the resampling is that of :func:`bootstrap_ci_from`.
    When the data set has :attr:`~digitrec.ImageDataset.groups` (or ``groups``
    is given), patients or studies are resampled rather than images.

    Args:
        model: The classifier.
        data: Labelled images that fit the model.
        metrics: Names from :data:`BootstrapMetric`.
        groups: Identifier per image; ``None`` takes the data set's, if any.
        positive: The positive class (for two classes usually 1, e.g. pneumonia).
        n_resamples: Number of resamples.
        confidence: Confidence level in ``(0, 1)``.
        seed: Seed of the resampling.
        device: Where to compute the predictions; ``None``: where the model is.
        batch_size: Images per forward pass.

    Returns:
        The :class:`BootstrapReport`; ``print(report)`` gives one line per metric.

    Raises:
        InvalidTypeError: If ``data`` is not an :class:`~digitrec.ImageDataset`.
        InvalidInputError: If the data does not fit the model, or for bad settings.

    Example:
        >>> model = digitrec.DigitClassifier(num_classes=2, seed=0)
        >>> data = digitrec.load_mnist("test")[:200]
        >>> data = digitrec.ImageDataset(data.images, (data.labels == 1).long())
        >>> report = digitrec.evaluation.bootstrap_ci(model, data, n_resamples=100)
        >>> interval = report["accuracy"]
        >>> interval.low <= interval.estimate <= interval.high
        True
    """
    if not isinstance(data, ImageDataset):
        raise InvalidTypeError(f"data must be a digitrec.ImageDataset, got {type(data).__name__}")
    probs = probabilities(model, data, device, batch_size)
    return bootstrap_ci_from(
        probs,
        data.labels,
        metrics=metrics,
        groups=data.groups if groups is None else groups,
        positive=positive,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )

"""K-fold cross-validation: train a fresh model per fold, report each fold and their mean.

It sits above training (it calls :class:`~digitrec.training.Trainer`) and
evaluation, and beside exporting in the layers: nothing in the library imports it.
The folds come from :func:`~digitrec.data.kfold`, so with groups (patients) no
group is ever trained on and validated in the same fold. The mean of each
figure gets a Student-t interval over the folds, which describes the spread
between folds; the folds share training images, so it is narrower than a
truly independent replication would be.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._checks import check_int, check_number
from .data import ImageDataset, group_split, kfold, stratified_split
from .errors import InvalidInputError, InvalidTypeError
from .evaluation import ClassificationReport, Interval, calibrate, evaluate
from .models import DigitClassifier
from .training import Trainer

__all__ = ["CrossValidation", "cross_validate"]

_SCALARS = ("accuracy", "balanced_accuracy", "auroc", "ece", "nll", "brier")


def t_quantile(probability: float, df: int) -> float:
    """The ``probability`` quantile of Student's t with ``df`` degrees of freedom.

    Bisection on the CDF, itself Simpson's rule on the density (accurate to 1e-9).
    """
    if probability == 0.5:
        return 0.0
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(t: float) -> float:
        grid = np.linspace(0.0, abs(t), 20_001)
        density = np.exp(log_norm - (df + 1) / 2 * np.log1p(grid**2 / df))
        step = grid[1] - grid[0]
        area = (
            step
            / 3
            * (density[0] + density[-1] + 4 * density[1:-1:2].sum() + 2 * density[2:-1:2].sum())
        )
        return 0.5 + math.copysign(float(area), t)

    low, high = -1e3, 1e3
    for _ in range(80):
        middle = (low + high) / 2
        if cdf(middle) < probability:
            low = middle
        else:
            high = middle
    return (low + high) / 2


@dataclass(frozen=True)
class CrossValidation:
    """Per-fold reports of :func:`cross_validate` and each figure's mean over the folds.

    Attributes:
        reports: The :class:`~digitrec.ClassificationReport` of each fold's validation part.
        summary: Per figure (accuracy, balanced accuracy, ROC AUC, ECE, NLL,
            Brier score; for two classes also the sensitivity and specificity of
            class 1), the mean over folds with its Student-t interval.
        per_fold: Per figure, the value of each fold.
        confidence: The intervals' confidence level.

    Example:
        >>> cv = digitrec.crossval.CrossValidation((), {"accuracy": digitrec.evaluation.Interval(
        ...     0.9, 0.88, 0.92)}, {"accuracy": [0.89, 0.9, 0.91]}, 0.95)
        >>> print(cv)
        3-fold cross-validation, mean and 95% t-interval over folds:
          accuracy  0.9000 (0.8800 to 0.9200)   folds: 0.8900 0.9000 0.9100
    """

    reports: tuple[ClassificationReport, ...]
    summary: dict[str, Interval]
    per_fold: dict[str, list[float]]
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """Return plain values for JSON: the summary, per-fold values and fold reports.

        Example:
            >>> cv = digitrec.crossval.CrossValidation((), {}, {}, 0.95)
            >>> cv.to_dict()["confidence"]
            0.95
        """
        return {
            "confidence": self.confidence,
            "summary": {
                name: {"mean": i.estimate, "low": i.low, "high": i.high}
                for name, i in self.summary.items()
            },
            "per_fold": self.per_fold,
            "reports": [report.to_dict() for report in self.reports],
        }

    def __str__(self) -> str:
        folds = len(next(iter(self.per_fold.values()), []))
        width = max((len(name) for name in self.summary), default=0)
        lines = [
            f"{folds}-fold cross-validation, mean and {100 * self.confidence:g}% "
            "t-interval over folds:"
        ]
        for name, interval in self.summary.items():
            values = " ".join(f"{value:.4f}" for value in self.per_fold[name])
            lines.append(f"  {name:<{width}}  {interval}   folds: {values}")
        return "\n".join(lines)


def _summary(
    reports: list[ClassificationReport], confidence: float
) -> tuple[dict[str, Interval], dict[str, list[float]]]:
    per_fold = {name: [float(getattr(r, name)) for r in reports] for name in _SCALARS}
    if all(len(r.class_names) == 2 for r in reports):
        per_fold["sensitivity"] = [float(r.sensitivity[1]) for r in reports]
        per_fold["specificity"] = [float(r.specificity[1]) for r in reports]
    k = len(reports)
    spread = t_quantile((1 + confidence) / 2, k - 1)
    summary = {}
    for name, values in per_fold.items():
        mean = float(np.mean(values))
        half = spread * float(np.std(values, ddof=1)) / math.sqrt(k)
        summary[name] = Interval(mean, mean - half, mean + half)
    return summary, per_fold


def cross_validate(
    make_model: Callable[[], DigitClassifier],
    data: ImageDataset,
    *,
    k: int = 5,
    groups: Any = None,
    stratify: bool = True,
    seed: int = 0,
    calibration_size: float | None = None,
    confidence: float = 0.95,
    trainer_kwargs: Mapping[str, Any] | None = None,
) -> CrossValidation:
    """Train and evaluate a fresh model on each of ``k`` folds.

    Args:
        make_model: Called once per fold for a new, untrained model.
        data: All the labelled images; each is validated exactly once.
        k: Number of folds, at least 2.
        groups: Identifier per image (patients); ``None`` takes the data set's,
            if any. No group is on both sides of a fold.
        stratify: Keep each class's share alike in every fold.
        seed: Seed of the folds (and of the calibration split).
        calibration_size: If given, this share of each fold's training part
            (by group, when there are groups) is held out to fit the softmax
            temperature (:func:`~digitrec.calibrate`), so ECE, NLL and Brier are
            of calibrated probabilities; ``None`` trains on all of it.
        confidence: The level of the intervals over folds, in ``(0, 1)``.
        trainer_kwargs: Keyword arguments of :class:`~digitrec.Trainer` (recipe,
            epochs, class_weights ... ); ``progress`` defaults to ``False``.

    Returns:
        The :class:`CrossValidation`; ``print`` it for the summary.

    Raises:
        InvalidTypeError: If ``make_model`` does not return a DigitClassifier.
        InvalidInputError: For bad settings or data the folds cannot divide.

    Example:
        >>> data = digitrec.load_mnist("train")[:600]
        >>> cv = digitrec.crossval.cross_validate(
        ...     lambda: digitrec.DigitClassifier(seed=0), data, k=3,
        ...     trainer_kwargs={"epochs": 1})
        >>> len(cv.reports), cv.summary["accuracy"].low <= cv.summary["accuracy"].estimate
        (3, True)
    """
    level = check_number(confidence, "confidence", low=0.0, high=1.0, low_open=True, high_open=True)
    seed = check_int(seed, "seed", minimum=0)
    if calibration_size is not None:
        check_number(
            calibration_size, "calibration_size", low=0.0, high=1.0, low_open=True, high_open=True
        )
    options = {"progress": False, **(trainer_kwargs or {})}
    reports = []
    for fold, (train, val) in enumerate(
        kfold(data, k, groups=groups, stratify=stratify, seed=seed)
    ):
        model = make_model()
        if not isinstance(model, DigitClassifier):
            raise InvalidTypeError(
                f"make_model must return a digitrec.DigitClassifier, got {type(model).__name__}"
            )
        held_out = None
        if calibration_size is not None:
            if train.groups is not None:
                train, held_out = group_split(train, None, calibration_size, seed=seed + fold)
            else:
                train, held_out = stratified_split(train, calibration_size, seed=seed + fold)
        Trainer(model, **options).fit(train)
        if held_out is not None:
            calibrate(model, held_out)
        reports.append(evaluate(model, val))
    if len(reports) < 2:
        raise InvalidInputError(f"cross-validation needs at least 2 folds, got {len(reports)}")
    summary, per_fold = _summary(reports, level)
    return CrossValidation(tuple(reports), summary, per_fold, level)

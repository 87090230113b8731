"""Validation metrics recorded each epoch: named functions of ``(logits, labels)``.

Built in: ``"accuracy"``, ``"balanced_accuracy"``, ``"auroc"`` and the operating
points ``"sensitivity@<s>specificity"`` (the highest sensitivity at a
specificity of at least ``s``) and ``"specificity@<s>sensitivity"``. Scores are
one-vs-rest: for two classes class 1 is the positive one; for more classes, and
for each label of a multilabel model, the figures are averaged over the classes
(labels) where they are defined. Computed here, on the logits already at hand,
so an epoch costs one forward pass over the validation set and no extra import.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import torch

from ..errors import InvalidInputError, InvalidTypeError

#: A validation metric: ``function(logits, labels) -> float``.
MetricFunction = Callable[[torch.Tensor, torch.Tensor], float]

_OPERATING_POINT = re.compile(
    r"(sensitivity|specificity)@(0?\.\d+|1(?:\.0*)?)(specificity|sensitivity)"
)


def _scores_and_targets(
    logits: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return one-vs-rest scores and 0/1 targets, one column per class (or label)."""
    if labels.dim() == 2:
        return torch.sigmoid(logits.double()), labels.to(torch.bool)
    probs = torch.softmax(logits.double(), dim=1)
    targets = torch.nn.functional.one_hot(labels, logits.shape[1]).to(torch.bool)
    if logits.shape[1] == 2:
        return probs[:, 1:], targets[:, 1:]
    return probs, targets


def _average(values: list[float]) -> float:
    defined = [value for value in values if not math.isnan(value)]
    return sum(defined) / len(defined) if defined else math.nan


def _auroc_column(scores: torch.Tensor, positive: torch.Tensor) -> float:
    positives, negatives = int(positive.sum()), int((~positive).sum())
    if not positives or not negatives:
        return math.nan
    # Mann-Whitney U with average ranks for ties.
    order = torch.argsort(scores)
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=scores.dtype)
    unique, inverse = torch.unique(scores, return_inverse=True)
    totals = torch.zeros(len(unique), dtype=scores.dtype).index_add_(0, inverse, ranks)
    counts = torch.zeros(len(unique), dtype=scores.dtype).index_add_(
        0, inverse, torch.ones_like(scores)
    )
    average = (totals / counts)[inverse]
    u = float(average[positive].sum()) - positives * (positives + 1) / 2
    return u / (positives * negatives)


def auroc(logits: torch.Tensor, labels: torch.Tensor) -> float:
    scores, targets = _scores_and_targets(logits, labels)
    return _average([_auroc_column(scores[:, k], targets[:, k]) for k in range(scores.shape[1])])


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    if labels.dim() == 2:
        return float(((logits > 0) == labels.to(torch.bool)).double().mean())
    return float((logits.argmax(dim=1) == labels).double().mean())


def balanced_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    if labels.dim() == 2:
        predicted, targets = logits > 0, labels.to(torch.bool)
        rates = []
        for k in range(labels.shape[1]):
            pos, neg = targets[:, k], ~targets[:, k]
            if pos.any() and neg.any():
                sensitivity = float(predicted[pos, k].double().mean())
                specificity = float((~predicted[neg, k]).double().mean())
                rates.append((sensitivity + specificity) / 2)
        return _average(rates)
    predicted = logits.argmax(dim=1)
    recalls = [
        float((predicted[labels == k] == k).double().mean())
        for k in range(logits.shape[1])
        if bool((labels == k).any())
    ]
    return _average(recalls)


def _at_operating_point(measure: str, level: float) -> MetricFunction:
    def metric(logits: torch.Tensor, labels: torch.Tensor) -> float:
        scores, targets = _scores_and_targets(logits, labels)
        values = []
        for k in range(scores.shape[1]):
            pos, neg = scores[targets[:, k], k], scores[~targets[:, k], k]
            if not len(pos) or not len(neg):
                continue
            if measure == "sensitivity":
                # Positive when score > t; the smallest t keeping specificity >= level.
                t = neg.sort().values[max(math.ceil(level * len(neg)) - 1, 0)]
                values.append(float((pos > t).double().mean()))
            else:
                # Positive when score >= t; the largest t keeping sensitivity >= level.
                t = pos.sort(descending=True).values[max(math.ceil(level * len(pos)) - 1, 0)]
                values.append(float((neg < t).double().mean()))
        return _average(values)

    return metric


_BUILT_IN: dict[str, MetricFunction] = {
    "accuracy": accuracy,
    "balanced_accuracy": balanced_accuracy,
    "auroc": auroc,
}


def resolve_metrics(
    metrics: Sequence[str | tuple[str, MetricFunction]],
) -> dict[str, MetricFunction]:
    """Return ``{name: function}`` for built-in names and ``(name, function)`` pairs."""
    if isinstance(metrics, (str, bytes)) or not isinstance(metrics, Sequence):
        raise InvalidTypeError(
            "metrics must be a sequence of names or (name, function) pairs, got "
            f"{type(metrics).__name__}"
        )
    resolved: dict[str, MetricFunction] = {}
    for item in metrics:
        if isinstance(item, str):
            name = item
            point = _OPERATING_POINT.fullmatch(name)
            if name in _BUILT_IN:
                function = _BUILT_IN[name]
            elif point and point.group(1) != point.group(3) and 0 < float(point.group(2)) <= 1:
                function = _at_operating_point(point.group(1), float(point.group(2)))
            else:
                raise InvalidInputError(
                    f"metric names must be one of {sorted(_BUILT_IN)}, "
                    "'sensitivity@<s>specificity' or 'specificity@<s>sensitivity' with s in "
                    f"(0, 1], or a (name, function) pair, got {name!r}"
                )
        elif (
            isinstance(item, tuple)
            and len(item) == 2
            and isinstance(item[0], str)
            and callable(item[1])
        ):
            name, function = item
        else:
            raise InvalidTypeError(
                f"each metric must be a name or a (name, function) pair, got {item!r}"
            )
        if not name or name in resolved or name == "loss":
            raise InvalidInputError(
                f"metric names must be distinct, non-empty and not 'loss', got {name!r}"
            )
        resolved[name] = function
    return resolved

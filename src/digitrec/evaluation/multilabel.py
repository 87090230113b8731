"""Multi-label metrics: each finding (label) of an image measured on its own.

For data such as ChestMNIST (14 findings per chest X-ray, any number present),
each label gets its own sensitivity, specificity, ROC AUC, calibration error
and threshold; thresholds are chosen on validation data for a target
sensitivity (:func:`multilabel_thresholds`) and then applied to test data
(:func:`multilabel_metrics`). Inputs are probabilities or logits ``(N, L)``
and 0/1 targets ``(N, L)``; :func:`evaluate_multilabel` makes them from a model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .._checks import check_bool, check_positive_int
from .._device import DeviceLike
from .._runtime import model_device
from ..data import ImageDataset
from ..errors import InvalidInputError, InvalidTypeError
from ..models import DigitClassifier
from ..models._batches import logits_in_batches
from ..models._validate import check_model
from .bootstrap import _weighted_auroc
from .thresholds import threshold_for_sensitivity

__all__ = ["MultilabelReport", "evaluate_multilabel", "multilabel_metrics", "multilabel_thresholds"]

_BINS = 15


def _inputs(scores: Any, targets: Any, logits: bool) -> tuple[torch.Tensor, torch.Tensor]:
    values = torch.as_tensor(scores, dtype=torch.float64).detach().cpu()
    truth = torch.as_tensor(targets).detach().cpu()
    if values.dim() != 2 or truth.shape != values.shape or values.shape[0] == 0:
        raise InvalidInputError(
            f"scores and targets must both have shape (N, L) with N >= 1, got "
            f"{tuple(values.shape)} and {tuple(truth.shape)}"
        )
    if truth.is_floating_point() and not bool(((truth == 0) | (truth == 1)).all()):
        raise InvalidInputError("targets must be 0 or 1")
    if not truth.is_floating_point() and truth.numel() and (truth.min() < 0 or truth.max() > 1):
        raise InvalidInputError(
            f"targets must be 0 or 1, got values from {int(truth.min())} to {int(truth.max())}"
        )
    probs = torch.sigmoid(values) if check_bool(logits, "logits") else values
    if not logits and not bool(((probs >= 0) & (probs <= 1)).all()):
        raise InvalidInputError("probabilities must lie in [0, 1]; pass logits=True for logits")
    return probs, truth.bool()


def binary_ece(probs: torch.Tensor, truth: torch.Tensor) -> float:
    """Calibration error of positive probabilities: 15 equal bins, as torchmetrics' binary one."""
    index = torch.clamp(torch.ceil(probs * _BINS).long() - 1, min=0)
    gap = torch.zeros(_BINS, dtype=torch.float64)
    gap.index_add_(0, index, probs - truth.double())
    return float(gap.abs().sum() / len(probs))


@dataclass(frozen=True)
class MultilabelReport:
    """Per-label figures of a multi-label classifier, from :func:`multilabel_metrics`.

    Per-label values are ``float64`` tensors ``(L,)`` in label order; ``nan``
    where a figure is undefined (ROC AUC or sensitivity of a label without a
    positive image, specificity without a negative one).

    Attributes:
        label_names: Names of the labels (``"0"``, ``"1"``, ... when unknown).
        support: Number of images with each label present.
        thresholds: The probability at or above which each label is called present.
        sensitivity: Share of images with the label that are called positive.
        specificity: Share of images without it that are called negative.
        auroc: ROC AUC of each label.
        ece: Calibration error of each label's probability (15 equal bins).
        macro_auroc: Mean ROC AUC over the labels where it is defined.

    Example:
        >>> report = digitrec.evaluation.multilabel_metrics(
        ...     torch.tensor([[0.9, 0.2], [0.1, 0.7], [0.8, 0.6]]),
        ...     torch.tensor([[1, 0], [0, 1], [1, 0]]))
        >>> report.sensitivity.tolist(), report.specificity.tolist()
        ([1.0, 1.0], [1.0, 0.5])
    """

    label_names: tuple[str, ...]
    support: torch.Tensor
    thresholds: torch.Tensor
    sensitivity: torch.Tensor
    specificity: torch.Tensor
    auroc: torch.Tensor
    ece: torch.Tensor
    macro_auroc: float

    def to_dict(self) -> dict[str, Any]:
        """Return plain values for JSON (``nan`` as ``None``).

        Example:
            >>> report = digitrec.evaluation.multilabel_metrics(
            ...     torch.tensor([[0.9], [0.2]]), torch.tensor([[1], [0]]))
            >>> report.to_dict()["auroc"]
            [1.0]
        """

        def plain(value: float) -> float | None:
            return None if math.isnan(value) else value

        result: dict[str, Any] = {"label_names": list(self.label_names)}
        for key in ("support", "thresholds", "sensitivity", "specificity", "auroc", "ece"):
            result[key] = [plain(float(v)) for v in getattr(self, key).tolist()]
        result["macro_auroc"] = plain(self.macro_auroc)
        return result

    def __str__(self) -> str:
        width = max(5, *(len(name) for name in self.label_names))
        lines = [
            f"{'label':<{width}}  support  threshold  sensitivity  specificity   auroc     ece"
        ]
        for index, name in enumerate(self.label_names):
            lines.append(
                f"{name:<{width}}  {int(self.support[index]):7d}"
                f"  {float(self.thresholds[index]):9.4f}"
                f"  {float(self.sensitivity[index]):11.3f}  {float(self.specificity[index]):11.3f}"
                f"  {float(self.auroc[index]):6.4f}  {float(self.ece[index]):6.4f}"
            )
        lines.append(f"macro ROC AUC: {self.macro_auroc:.4f}")
        return "\n".join(lines)


def multilabel_thresholds(
    scores: Any, targets: Any, *, sensitivity: float = 0.95, logits: bool = False
) -> torch.Tensor:
    """Per label, the highest probability threshold that reaches ``sensitivity`` on this data.

    Choose them on validation data, then pass them to :func:`multilabel_metrics`
    on test data. A label without a positive image gets ``nan`` (never called).

    Args:
        scores: Probabilities ``(N, L)`` (or logits with ``logits=True``).
        targets: 0/1 truth ``(N, L)``.
        sensitivity: The target share of positives found, in ``(0, 1]``.
        logits: ``scores`` are logits: the sigmoid is applied first.

    Returns:
        ``float64`` thresholds ``(L,)`` on the probability scale.

    Raises:
        InvalidInputError: For shapes that disagree or targets that are not 0/1.

    Example:
        >>> scores = torch.tensor([[0.9, 0.2], [0.6, 0.7], [0.3, 0.6]])
        >>> targets = torch.tensor([[1, 0], [1, 1], [0, 1]])
        >>> digitrec.evaluation.multilabel_thresholds(scores, targets, sensitivity=1.0).tolist()
        [0.6, 0.6]
    """
    probs, truth = _inputs(scores, targets, logits)
    return torch.tensor(
        [
            threshold_for_sensitivity(probs[:, j], truth[:, j], sensitivity)
            if bool(truth[:, j].any())
            else math.nan
            for j in range(probs.shape[1])
        ],
        dtype=torch.float64,
    )


def multilabel_metrics(
    scores: Any,
    targets: Any,
    *,
    thresholds: float | Sequence[float] | torch.Tensor = 0.5,
    logits: bool = False,
    label_names: Sequence[str] | None = None,
) -> MultilabelReport:
    """Measure each label on its own: sensitivity, specificity, ROC AUC, calibration.

    Args:
        scores: Probabilities ``(N, L)`` (or logits with ``logits=True``).
        targets: 0/1 truth ``(N, L)``.
        thresholds: One probability for all labels, or one per label (e.g. from
            :func:`multilabel_thresholds` on validation data).
        logits: ``scores`` are logits: the sigmoid is applied first.
        label_names: Names of the labels.

    Returns:
        The :class:`MultilabelReport`; ``print`` it for a table.

    Raises:
        InvalidInputError: For shapes that disagree, targets that are not 0/1 or
            probabilities outside ``[0, 1]``.

    Example:
        >>> report = digitrec.evaluation.multilabel_metrics(
        ...     torch.tensor([[2.0, -1.0], [-3.0, 0.5]]), torch.tensor([[1, 0], [0, 1]]),
        ...     logits=True, label_names=["effusion", "nodule"])
        >>> report.auroc.tolist(), report.label_names
        ([1.0, 1.0], ('effusion', 'nodule'))
    """
    probs, truth = _inputs(scores, targets, logits)
    labels = probs.shape[1]
    cut = torch.as_tensor(thresholds, dtype=torch.float64).flatten()
    if cut.numel() == 1:
        cut = cut.expand(labels).clone()
    if cut.shape != (labels,):
        raise InvalidInputError(f"thresholds must be one number or {labels}, got {cut.numel()}")
    names = tuple(label_names) if label_names is not None else tuple(map(str, range(labels)))
    if len(names) != labels:
        raise InvalidInputError(f"label_names must name {labels} labels, got {len(names)}")
    called = probs >= cut
    positives = truth.sum(dim=0).double()
    negatives = (~truth).sum(dim=0).double()
    sensitivity = (called & truth).sum(dim=0) / positives
    specificity = (~called & ~truth).sum(dim=0) / negatives
    ones = torch.ones(1, probs.shape[0], dtype=torch.float64).numpy()
    auroc = torch.tensor(
        [
            float(_weighted_auroc(ones, probs[:, j].numpy(), truth[:, j].numpy())[0])
            for j in range(labels)
        ],
        dtype=torch.float64,
    )
    defined = ~torch.isnan(auroc)
    return MultilabelReport(
        label_names=names,
        support=truth.sum(dim=0),
        thresholds=cut,
        sensitivity=sensitivity,
        specificity=specificity,
        auroc=auroc,
        ece=torch.tensor(
            [binary_ece(probs[:, j], truth[:, j]) for j in range(labels)], dtype=torch.float64
        ),
        macro_auroc=float(auroc[defined].mean()) if bool(defined.any()) else math.nan,
    )


def evaluate_multilabel(
    model: DigitClassifier,
    data: ImageDataset,
    *,
    thresholds: float | Sequence[float] | torch.Tensor = 0.5,
    device: DeviceLike | None = None,
    batch_size: int = 1024,
) -> MultilabelReport:
    """Measure a multi-label model (``task="multilabel"``) on data with ``(N, L)`` labels.

    Args:
        model: The classifier; its temperature and sigmoid give the probabilities.
        data: Images with 0/1 labels ``(N, L)``, ``L`` the model's outputs.
        thresholds: As for :func:`multilabel_metrics`.
        device: Where to compute; ``None``: where the model is.
        batch_size: Images per forward pass.

    Returns:
        The :class:`MultilabelReport`, the labels named as the model or data names them.

    Raises:
        InvalidTypeError: If ``data`` is not an :class:`~digitrec.ImageDataset`.
        InvalidInputError: If the data is not multi-label or does not fit the model.

    Example:
        >>> model = digitrec.DigitClassifier(num_classes=3, task="multilabel", seed=0)
        >>> data = digitrec.ImageDataset.from_arrays(
        ...     np.zeros((4, 28, 28), np.uint8), np.array([[1, 0, 1], [0, 1, 0]] * 2))
        >>> digitrec.evaluation.evaluate_multilabel(model, data).support.tolist()
        [2, 2, 2]
    """
    model = check_model(model)
    if not isinstance(data, ImageDataset):
        raise InvalidTypeError(f"data must be a digitrec.ImageDataset, got {type(data).__name__}")
    if model.task != "multilabel":
        raise InvalidInputError(f"model must have task='multilabel', got {model.task!r}")
    if not data.multilabel or data.labels.shape[1] != model.num_classes:
        raise InvalidInputError(
            f"data must have multi-label labels (N, {model.num_classes}), got "
            f"{tuple(data.labels.shape)}"
        )
    size = check_positive_int(batch_size, "batch_size")
    logits = logits_in_batches(model, data.images, model_device(model, device), size)
    probs = model.probabilities(logits.double())
    names = model.class_names or data.class_names
    return multilabel_metrics(probs, data.labels, thresholds=thresholds, label_names=names)

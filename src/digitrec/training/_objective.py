"""The loss a model trains on, its class weights, and the balanced sampler's weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import InvalidInputError
from ..models import DigitClassifier
from .config import TrainConfig


def check_targets(model: DigitClassifier, labels: torch.Tensor, what: str) -> None:
    """Check that ``labels`` are what the model's task trains on."""
    classes = model.num_classes
    if model.task == "multiclass":
        if labels.dim() != 1:
            raise InvalidInputError(
                f"{what} labels must have shape (N,) for a multiclass model, got "
                f"{tuple(labels.shape)}; a model for (N, L) 0/1 labels needs task='multilabel'"
            )
        return
    if labels.dim() != 2 or labels.shape[1] != classes:
        raise InvalidInputError(
            f"{what} labels must have shape (N, {classes}) for a multilabel model with "
            f"{classes} labels, got {tuple(labels.shape)}"
        )
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) > 1):
        raise InvalidInputError(
            f"{what} labels of a multilabel model must be 0 or 1, got values from "
            f"{int(labels.min())} to {int(labels.max())}"
        )


def class_weights(
    config: TrainConfig, model: DigitClassifier, labels: torch.Tensor
) -> torch.Tensor | None:
    """Return the loss's per-class weights (``pos_weight`` for multilabel), or ``None``."""
    setting = config.class_weights
    classes = model.num_classes
    if setting is None:
        return None
    if setting != "balanced":
        if len(setting) != classes:
            raise InvalidInputError(
                f"class_weights must hold one weight per class ({classes}), got {len(setting)}"
            )
        return torch.tensor(setting, dtype=torch.float32)
    if model.task == "multilabel":
        positives = labels.sum(dim=0).to(torch.float64)
        negatives = labels.shape[0] - positives
        # A label with no positive image has nothing to weigh up: weight 1.
        ratio = torch.where(positives > 0, negatives / positives.clamp(min=1), 1.0)
        return ratio.to(torch.float32)
    counts = torch.bincount(labels, minlength=classes).to(torch.float64)
    weights = torch.where(
        counts > 0, labels.shape[0] / (classes * counts.clamp(min=1)), torch.zeros(())
    )
    return weights.to(torch.float32)


def sample_weights(
    config: TrainConfig, model: DigitClassifier, labels: torch.Tensor
) -> torch.Tensor | None:
    """Return each image's weight for the balanced sampler (1 / its class's count), or ``None``."""
    if config.sampler == "shuffle":
        return None
    if model.task == "multilabel":
        raise InvalidInputError(
            "sampler='balanced' draws classes equally, which a multilabel model does not "
            "have; use sampler='shuffle' with class_weights='balanced'"
        )
    counts = torch.bincount(labels, minlength=model.num_classes).to(torch.float64)
    return (1.0 / counts)[labels]


class Objective:
    """The summed loss of a batch: weighted cross-entropy, or BCE for multilabel models."""

    def __init__(
        self, multilabel: bool, weights: torch.Tensor | None = None, label_smoothing: float = 0.0
    ) -> None:
        self.multilabel = multilabel
        self.weights = weights
        self.label_smoothing = label_smoothing

    def to(self, device: torch.device) -> Objective:
        weights = None if self.weights is None else self.weights.to(device)
        return Objective(self.multilabel, weights, self.label_smoothing)

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Return the batch's mean loss (each image's loss: mean over labels, multilabel)."""
        logits = logits.float()
        if self.multilabel:
            targets = labels.to(logits.dtype)
            if self.label_smoothing:
                targets = targets * (1 - self.label_smoothing) + self.label_smoothing / 2
            return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=self.weights)
        if self.weights is None:
            return F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        # Keras's class_weight: each image's loss times its class's weight, averaged over
        # the images (torch's weighted mean would divide by the sum of the weights).
        summed = F.cross_entropy(
            logits,
            labels,
            weight=self.weights,
            reduction="sum",
            label_smoothing=self.label_smoothing,
        )
        return summed / labels.shape[0]

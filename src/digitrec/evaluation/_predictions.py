"""One pass of a model over labelled data: its calibrated probabilities, checked inputs."""

from __future__ import annotations

import torch

from .._checks import check_positive_int
from .._device import DeviceLike
from .._model_inputs import model_batch
from .._runtime import model_device
from ..data import ImageDataset
from ..models import DigitClassifier
from ..models._batches import logits_in_batches
from ..models._validate import check_labels, check_model


def probabilities(
    model: DigitClassifier,
    data: ImageDataset,
    device: DeviceLike | None,
    batch_size: int,
    what: str = "data",
) -> torch.Tensor:
    """Return ``float64`` softmax probabilities ``(N, classes)``, the temperature applied."""
    model = check_model(model)
    data = check_labels(model, data, what)
    images = model_batch(model, data, None, f"{what} images")
    size = check_positive_int(batch_size, "batch_size")
    logits = logits_in_batches(model, images, model_device(model, device), size).double()
    return torch.softmax(logits / float(model.temperature), dim=1)

"""Logits of many images, a batch at a time, in eval mode: what every prediction runs."""

from __future__ import annotations

import torch

from .._runtime import eval_mode, move_to
from .classifier import DigitClassifier


def logits_in_batches(
    model: DigitClassifier, images: torch.Tensor, device: torch.device, batch_size: int
) -> torch.Tensor:
    """Return the CPU logits of checked ``images``, ``batch_size`` at a time on ``device``."""
    move_to(model, device)
    with eval_mode(model):
        chunks = [
            model(images[start : start + batch_size].to(device, non_blocking=True)).float().cpu()
            for start in range(0, images.shape[0], batch_size)
        ]
    if not chunks:
        return torch.empty(0, model.num_classes)
    return torch.cat(chunks)

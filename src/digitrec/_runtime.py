"""Context managers that change torch's state for one call and put it back."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from .models import DigitClassifier

_MODE_LOCKS: weakref.WeakKeyDictionary[torch.nn.Module, threading.Lock] = (
    weakref.WeakKeyDictionary()
)
_MODE_LOCKS_GUARD = threading.Lock()


def _mode_lock(model: torch.nn.Module) -> threading.Lock:
    with _MODE_LOCKS_GUARD:
        lock = _MODE_LOCKS.get(model)
        if lock is None:
            lock = _MODE_LOCKS[model] = threading.Lock()
        return lock


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Put ``model`` in eval mode under inference mode, then restore each module's mode.

    A model already in eval mode (the usual case when serving) is left alone: the
    switch walks the module tree twice, which was 40% of a single prediction's time.
    Calls on the same model from several threads take turns: otherwise one call
    restoring train mode could switch another's BatchNorm layers mid-forward.
    """
    with _mode_lock(model):
        modules = list(model.modules())
        modes = [module.training for module in modules]
        switch = any(modes)
        if switch:
            model.eval()
        try:
            with torch.inference_mode():
                yield
        finally:
            if switch:
                for module, mode in zip(modules, modes, strict=True):
                    module.training = mode


@contextmanager
def train_mode(model: torch.nn.Module) -> Iterator[None]:
    """Put ``model`` in train mode with gradients enabled, then restore its mode."""
    was_training = model.training
    model.train()
    try:
        with torch.enable_grad():
            yield
    finally:
        model.train(was_training)


@contextmanager
def cpu_threads(count: int | None) -> Iterator[None]:
    """Use ``count`` intra-op threads (``None`` leaves torch's setting), then restore."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if count is not None:
            torch.set_num_threads(previous)


def move_to(model: torch.nn.Module, device: torch.device) -> None:
    """Move ``model`` to ``device`` unless it is there already.

    ``Module.to`` walks every parameter and buffer even when nothing moves, which
    was most of the cost of predicting one image.
    """
    param = next(model.parameters(), None)
    if param is None or param.device != device:
        model.to(device)


def logits_in_batches(
    model: DigitClassifier, images: torch.Tensor, device: torch.device, batch_size: int
) -> torch.Tensor:
    """Return the CPU logits of ``images``, computed ``batch_size`` at a time on ``device``."""
    move_to(model, device)
    with eval_mode(model):
        chunks = [
            model(images[start : start + batch_size].to(device, non_blocking=True)).float().cpu()
            for start in range(0, images.shape[0], batch_size)
        ]
    if not chunks:
        return torch.empty(0, model.num_classes)
    return torch.cat(chunks)

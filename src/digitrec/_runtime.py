"""Context managers that change torch's state for one call and put it back, and devices.

A leaf below the models: it works on any ``nn.Module``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from ._device import DeviceLike, resolve_device

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
def _in_eval(model: torch.nn.Module) -> Iterator[None]:
    """Hold ``model`` in eval mode for the block, then restore each module's mode.

    A model already in eval mode (the usual case when serving) is left alone and
    takes no lock, so threads predicting with one model, or with separate models,
    run side by side. Only a model in train mode is switched, under its own lock
    so that another call cannot restore train mode mid-forward (BatchNorm would
    then use batch statistics); a call that finds that lock held waits for it.
    """
    lock = _mode_lock(model)
    modules = list(model.modules())
    if not lock.locked() and not any(module.training for module in modules):
        yield
        return
    with lock:
        modes = [module.training for module in modules]
        model.eval()
        try:
            yield
        finally:
            for module, mode in zip(modules, modes, strict=True):
                module.training = mode


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Put ``model`` in eval mode under inference mode for the block (predictions)."""
    with _in_eval(model), torch.inference_mode():
        yield


@contextmanager
def eval_mode_with_gradients(model: torch.nn.Module) -> Iterator[None]:
    """Put ``model`` in eval mode with gradients on, even inside inference mode (attributions)."""
    with _in_eval(model), torch.inference_mode(False), torch.enable_grad():
        yield


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


def model_device(model: torch.nn.Module, device: DeviceLike | None) -> torch.device:
    """Return ``device`` resolved, or with ``None`` the device the model's weights are on."""
    if device is not None:
        return resolve_device(device)
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")

"""The parts of a ``fit`` around the steps: seeding, data placement, epoch orders, validation."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..data import ImageDataset
from ..errors import InvalidInputError
from ..models import MNIST_MEAN, MNIST_STD, DigitClassifier
from ..models._batches import logits_in_batches
from ._engine import AutogradStep, FusedMLPStep, Step, fusable_linears, make_optimizer
from ._metrics import MetricFunction, accuracy
from ._objective import Objective
from .config import TrainConfig
from .history import History
from .stats import pixel_stats

_VAL_BATCH = 4096

#: The running average of a model's weights (``TrainConfig.ema_decay``).
WeightAverage = AveragedModel


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global generators for the block, then restore the caller's state."""
    devices = (
        [device.index if device.index is not None else torch.cuda.current_device()]
        if device.type == "cuda"
        else []
    )
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def check_precision(precision: str, device: torch.device) -> None:
    if precision == "fp32" or device.type == "cuda" or (precision, device.type) == ("bf16", "cpu"):
        return
    where = "a CUDA device (or the CPU)" if precision == "bf16" else "a CUDA device"
    instead = "'fp32' or 'bf16'" if device.type == "cpu" else "'fp32'"
    raise InvalidInputError(
        f"precision={precision!r} needs {where}, got device {str(device)!r}; use {instead}"
    )


def decide_normalization(model: DigitClassifier, train: ImageDataset) -> None:
    """Give an untrained model the mean and std it lacks: MNIST's for MNIST, else the data's."""
    config = model.config
    if config.mean is not None and config.std is not None:
        return
    mean, std = (MNIST_MEAN, MNIST_STD) if train.framing == "mnist" else pixel_stats(train)
    model._set_normalization(config.mean or mean, config.std or std)


class Batches:
    """The training set on the device, or in pinned host memory streamed batch by batch."""

    def __init__(self, train: ImageDataset, device: torch.device, on_device: bool | None) -> None:
        images, labels = train.images, train.labels
        if on_device is None:
            on_device = device.type != "cuda" or _fits(images.nbytes + labels.nbytes, device)
        self.device = device
        self.streams = device.type == "cuda" and not on_device
        if self.streams:
            self.images, self.labels = images.pin_memory(), labels.pin_memory()
            self.index_device = torch.device("cpu")
        else:
            self.images, self.labels = images.to(device), labels.to(device)
            self.index_device = device

    def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.streams:
            return self.images.index_select(0, batch), self.labels.index_select(0, batch)
        # Gather straight into pinned memory (torch's caching host allocator keeps each
        # block until its copy is done), then copy without waiting for it.
        parts = []
        for source in (self.images, self.labels):
            shape = (batch.shape[0], *source.shape[1:])
            pinned = torch.empty(shape, dtype=source.dtype, pin_memory=True)
            torch.index_select(source, 0, batch, out=pinned)
            parts.append(pinned.to(self.device, non_blocking=True))
        return parts[0], parts[1]


def _fits(nbytes: int, device: torch.device) -> bool:
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes < free // 2


def epoch_order(
    count: int, weights: torch.Tensor | None, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Return one epoch's image indices: a permutation, or balanced draws with replacement."""
    if weights is None:
        order = torch.randperm(count, generator=generator)
    else:
        order = torch.multinomial(weights, count, replacement=True, generator=generator)
    return order.to(device)


def make_step(
    model: DigitClassifier,
    config: TrainConfig,
    network: torch.nn.Module | None,
    objective: Objective,
    device: torch.device,
) -> Step:
    # Under DDP the gradients must be all-reduced, which the fused step does not do;
    # nor does it weigh classes, compute BCE or autocast.
    linears = fusable_linears(model) if network is None else None
    plain_sgd = config.optimizer == "sgd" and not config.nesterov
    plain_loss = objective.weights is None and not objective.multilabel
    simple = plain_sgd and plain_loss and config.precision == "fp32"
    if linears is not None and simple and not config.augment and not config.label_smoothing:
        return FusedMLPStep(model, linears, config.momentum, config.weight_decay)
    optimizer = make_optimizer(
        model,
        config.optimizer,
        config.lr,
        config.momentum,
        config.betas,
        config.weight_decay,
        config.nesterov,
    )
    augment = torch.Generator().manual_seed(config.seed + 1) if config.augment else None
    return AutogradStep(
        network or model, optimizer, objective, augment, config.precision, device.type
    )


@dataclass
class Validation:
    """Measures the validation set after each epoch: loss, accuracy and the metrics asked for."""

    data: ImageDataset
    metrics: Mapping[str, MetricFunction]
    multilabel: bool

    def __call__(self, model: DigitClassifier, device: torch.device, history: History) -> None:
        logits = logits_in_batches(model, self.data.images, device, _VAL_BATCH)
        labels = self.data.labels
        history.val_loss.append(float(Objective(self.multilabel)(logits, labels)))
        history.val_accuracy.append(accuracy(logits, labels))
        for name, function in self.metrics.items():
            history.val_metrics.setdefault(name, []).append(float(function(logits, labels)))


def weight_average(model: torch.nn.Module, decay: float | None) -> WeightAverage | None:
    """Return an exponential moving average of ``model``'s weights and buffers, or ``None``.

    The first update copies the model; each later one moves the average
    ``1 - decay`` of the way to the model's current values.
    """
    if decay is None:
        return None
    average_fn = get_ema_multi_avg_fn(decay)  # type: ignore[no-untyped-call]
    return AveragedModel(model, multi_avg_fn=average_fn, use_buffers=True)


def load_average(model: torch.nn.Module, average: WeightAverage) -> None:
    """Put the averaged weights and floating-point buffers into ``model``.

    Integer buffers (batch normalization's step counters) keep the model's values:
    an average of counts is not a count.
    """
    if int(average.n_averaged) == 0:
        return
    own = model.state_dict()
    averaged = average.module.state_dict()
    model.load_state_dict(
        {
            name: own[name] if not value.is_floating_point() else value
            for name, value in averaged.items()
        }
    )

"""The training loop: :class:`Trainer`.

The engine keeps the whole training set as tensors on the training device and
forms each mini-batch by indexing a seeded permutation, so no per-sample Python
code runs in the loop. Small networks run faster on one CPU thread than on
several (the threads' overhead outweighs the tiny matrix products), so each
recipe names its thread count; ``fit`` restores torch's setting afterwards.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import torch

from .._checks import check_bool
from .._device import DeviceLike, resolve_device
from .._runtime import cpu_threads, train_mode
from ..data import ImageDataset
from ..errors import InvalidInputError, InvalidTypeError
from ..io.atomic import write_atomically
from ..models import DigitClassifier
from ..models._validate import check_labelled_data, check_model
from ..models.config import Preparation
from . import _distributed
from ._engine import learning_rate
from ._fitting import (
    Batches,
    Validation,
    check_precision,
    decide_normalization,
    epoch_order,
    load_average,
    make_step,
    seeded,
    weight_average,
)
from ._metrics import MetricFunction, resolve_metrics
from ._objective import Objective, check_targets, class_weights, sample_weights
from ._progress import Progress
from ._state import Run, callback_keys, checkpoint_bytes, restore
from .callbacks import Callback
from .config import RECIPES, LRSchedule, OptimizerName, Precision, Sampler, TrainConfig
from .history import History

__all__ = ["Trainer"]


class Trainer:
    """Trains a :class:`~digitrec.DigitClassifier` on in-memory batches.

    The loss is cross-entropy (optionally class-weighted), or binary
    cross-entropy for ``"multilabel"`` models. The training set stays on the
    training device as ``uint8`` tensors (or in pinned host memory when it is too
    large, see :class:`TrainConfig`) and each mini-batch is gathered by index
    from a seeded permutation (or balanced draws). A model without ``mean`` and
    ``std`` takes them from the training data on its first ``fit``: MNIST's for
    bundled MNIST, :func:`~digitrec.training.pixel_stats` otherwise. Every setting
    left at ``None`` takes the value of the recipe (:data:`RECIPES`), by default
    the one named after the model's architecture; :attr:`config` holds the
    resolved settings.

    Args:
        model: The classifier to train; it is moved to ``device``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, ``"auto"`` (CUDA, then
            MPS, then CPU) or a ``torch.device``.
        recipe: The settings to start from: a name from :data:`RECIPES`, a
            :class:`TrainConfig`, or ``None`` for the recipe named after the
            model's architecture (``"mlp"``, ``"cnn"`` or ``"resnet"``; ``"resnet"``
            for registered and wrapped networks too).
        epochs: Passes over the training set.
        batch_size: Images per optimizer step.
        optimizer: ``"sgd"``, ``"adam"`` or ``"adamw"``.
        lr: Peak learning rate.
        momentum: SGD's momentum (Adam's first beta).
        weight_decay: L2 penalty.
        lr_schedule: ``"constant"`` or ``"cosine"``.
        augment: Random affine augmentation of the training batches.
        seed: Seed of the shuffling and of any randomness in the model during
            training (``None``: the recipe's seed). The initial weights are seeded
            where the model is built: ``DigitClassifier(seed=...)``.
        num_threads: CPU threads during training.
        class_weights: ``"balanced"`` or one weight per class (see :class:`TrainConfig`).
        sampler: ``"shuffle"`` or ``"balanced"`` (classes drawn equally often).
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (autocast; see :class:`TrainConfig`).
        data_on_device: Keep the training set on the device (``True``) or stream it
            from pinned host memory (``False``); ``None``: the recipe's setting.
        metrics: Validation metrics to record each epoch in
            :attr:`History.val_metrics` beside ``val_loss`` and ``val_accuracy``:
            names (``"accuracy"``, ``"balanced_accuracy"``, ``"auroc"``,
            ``"sensitivity@0.95specificity"``, ``"specificity@0.9sensitivity"``, any
            level in (0, 1]) or ``(name, function)`` pairs, where ``function(logits,
            labels)`` returns a float. Callbacks can monitor each as ``"val_<name>"``.
        progress: Report progress on stderr: a tqdm bar on a terminal (when tqdm is
            installed), otherwise one line per epoch.
        callbacks: :class:`~digitrec.Callback` objects called during ``fit``, such
            as :class:`~digitrec.Checkpoint` or :class:`~digitrec.EarlyStopping`.
        distributed: ``None`` (the default) trains with DDP when ``torchrun``
            launched the process and alone otherwise; ``True`` also joins a
            process group the caller initialized (and refuses to run without
            one); ``False`` always trains in this process alone.

    Raises:
        InvalidTypeError: If ``model`` is not a DigitClassifier.
        InvalidInputError: For out-of-range settings or unknown names.
        DeviceUnavailableError: If the device does not exist on this machine.

    Example:
        >>> train = digitrec.load_mnist("train")[:2000]
        >>> model = digitrec.DigitClassifier("mlp", seed=0)
        >>> trainer = digitrec.Trainer(model, epochs=2, progress=False)
        >>> history = trainer.fit(train)
        >>> history.epochs, history.train_loss[1] < history.train_loss[0]
        (2, True)
    """

    def __init__(
        self,
        model: DigitClassifier,
        *,
        device: DeviceLike = "cpu",
        recipe: str | TrainConfig | None = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        optimizer: OptimizerName | None = None,
        lr: float | None = None,
        momentum: float | None = None,
        weight_decay: float | None = None,
        lr_schedule: LRSchedule | None = None,
        augment: bool | None = None,
        seed: int | None = None,
        num_threads: int | None = None,
        class_weights: Literal["balanced"] | tuple[float, ...] | None = None,
        sampler: Sampler | None = None,
        precision: Precision | None = None,
        data_on_device: bool | None = None,
        metrics: Sequence[str | tuple[str, MetricFunction]] = (),
        progress: bool = True,
        callbacks: Sequence[Callback] = (),
        distributed: bool | None = None,
    ) -> None:
        self.model = check_model(model)
        self.device = resolve_device(device)
        if isinstance(recipe, TrainConfig):
            base = recipe
        elif (name := _default_recipe(model) if recipe is None else recipe) in RECIPES:
            base = RECIPES[name]
        else:
            raise InvalidInputError(
                f"recipe must be a TrainConfig or one of {sorted(RECIPES)}, got {recipe!r}"
            )
        overrides: dict[str, Any] = {
            "epochs": epochs,
            "batch_size": batch_size,
            "optimizer": optimizer,
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "lr_schedule": lr_schedule,
            "augment": augment,
            "seed": seed,
            "num_threads": num_threads,
            "class_weights": class_weights,
            "sampler": sampler,
            "precision": precision,
            "data_on_device": data_on_device,
        }
        chosen = {key: value for key, value in overrides.items() if value is not None}
        if chosen.get("optimizer", base.optimizer) != "sgd" and momentum is None:
            # Momentum and Nesterov are SGD's: switching a recipe to Adam drops them.
            chosen.update(momentum=0.0, nesterov=False)
        self.config: TrainConfig = replace(base, **chosen)
        check_precision(self.config.precision, self.device)
        # "accuracy" is always recorded, as History.val_accuracy.
        self.metrics = {k: f for k, f in resolve_metrics(metrics).items() if k != "accuracy"}
        if distributed is not None:
            check_bool(distributed, "distributed")
        self.distributed = distributed
        self.progress = progress
        if not all(isinstance(callback, Callback) for callback in callbacks):
            raise InvalidTypeError("callbacks must be digitrec.Callback objects")
        self.callbacks = list(callbacks)
        #: Set by a callback to end training after the current epoch.
        self.should_stop = False
        #: This process's rank and the number of processes (0 and 1 unless launched
        #: with torchrun); set by ``fit``.
        self.rank, self.world_size = 0, 1
        self._run: Run | None = None

    @property
    def is_main_process(self) -> bool:
        """Whether this process reports and writes files (rank 0, or not distributed)."""
        return self.rank == 0

    @property
    def has_validation(self) -> bool:
        """Whether the ``fit`` in progress (or the last one) measures validation accuracy."""
        return self._run is not None and self._run.validating

    @property
    def recorded(self) -> tuple[str, ...]:
        """The names the ``fit`` in progress (or the last) records, as ``History.values`` takes."""
        names = ["train_loss"]
        if self.has_validation:
            names += ["val_loss", "val_accuracy", *(f"val_{name}" for name in self.metrics)]
        return tuple(names)

    def _load_callbacks(self, states: dict[str, Any]) -> None:
        """Hand each callback its state from a checkpoint (matched by class and place)."""
        for key, callback in zip(callback_keys(self.callbacks), self.callbacks, strict=True):
            if key in states:
                callback.load_state_dict(states[key])

    def save_checkpoint(self, path: str | os.PathLike[str]) -> Path:
        """Write a resumable training checkpoint of the current (or last) ``fit``, atomically.

        :class:`~digitrec.callbacks.Checkpoint` calls this after each epoch; pass
        the file to ``fit(train, resume_from=path)`` to continue.

        Raises:
            InvalidInputError: If no ``fit`` has completed an epoch yet.
        """
        run = self._run
        if run is None or run.global_rng is None:
            raise InvalidInputError("save_checkpoint needs a fit that has completed an epoch")
        target = Path(path).expanduser()
        if not self.is_main_process:
            return target  # under torchrun the ranks hold the same state: rank 0 writes it
        states = {
            key: callback.state_dict()
            for key, callback in zip(callback_keys(self.callbacks), self.callbacks, strict=True)
        }
        write_atomically(target, checkpoint_bytes(self.model, self.config, run, states))
        return target

    def fit(
        self,
        train: ImageDataset,
        val: ImageDataset | None = None,
        *,
        resume_from: str | os.PathLike[str] | None = None,
    ) -> History:
        """Train the model in place and return the per-epoch history.

        Args:
            train: Labelled training images that fit the model.
            val: Optional labelled images whose accuracy is measured after each epoch.
            resume_from: A training checkpoint written by :meth:`save_checkpoint`
                (or :class:`~digitrec.callbacks.Checkpoint`) for this model, these
                settings and this training set: training continues after its last
                epoch. On the CPU the result is bit-identical to an uninterrupted run.

        Returns:
            The :class:`History` of the run (including the epochs before a resume).

        Raises:
            InvalidTypeError: If a data set is not an ImageDataset.
            InvalidInputError: If a data set is empty or does not fit the model.
            CheckpointError: If ``resume_from`` does not belong to this run.
        """
        train = check_labelled_data(self.model, train, "train")
        check_targets(self.model, train.labels, "train")
        validation = None
        if val is not None:
            val = check_labelled_data(self.model, val, "val")
            check_targets(self.model, val.labels, "val")
            validation = Validation(val, self.metrics, self.model.task == "multilabel")
        config = self.config
        weights = class_weights(config, self.model, train.labels)
        draws = sample_weights(config, self.model, train.labels)
        if self.model.config.prepare is None:
            # The model records how raw inputs are to reach it: digits trained in
            # MNIST's framing expect raw digits prepared into it.
            preparation: Preparation = "digits" if train.framing == "mnist" else "resize"
            self.model._config = replace(self.model.config, prepare=preparation)
        decide_normalization(self.model, train)
        self.rank, self.world_size, self.device = _distributed.join(self.device, self.distributed)
        model = self.model.to(self.device)
        batches = Batches(train, self.device, config.data_on_device)
        objective = Objective(self.model.task == "multilabel", weights, config.label_smoothing)
        objective = objective.to(self.device)
        # Each rank takes an equal share of every epoch's permutation, so all ranks
        # step the same number of times (DDP needs that); at most world_size - 1
        # images (a different few each epoch) sit out an epoch.
        count = len(train)
        share = count // self.world_size
        if share == 0:
            raise InvalidInputError(
                f"train holds {count} images, fewer than the {self.world_size} processes"
            )
        steps_per_epoch = math.ceil(share / config.batch_size)
        total_steps = config.epochs * steps_per_epoch
        warmup_steps = round(config.warmup_epochs * steps_per_epoch)
        progress = Progress(
            self.progress and self.is_main_process, config.epochs, steps_per_epoch, sys.stderr
        )
        threads = config.num_threads if self.device.type == "cpu" else None
        self.should_stop = False
        try:
            with cpu_threads(threads), seeded(config.seed, self.device), train_mode(model):
                network = None
                if self.world_size > 1:
                    from torch.nn.parallel import DistributedDataParallel

                    ids = [self.device.index] if self.device.type == "cuda" else None
                    network = DistributedDataParallel(model, device_ids=ids)
                run = self._run = Run(
                    update=make_step(model, config, network, objective, self.device),
                    shuffle=torch.Generator().manual_seed(config.seed),
                    train=train,
                    validating=val is not None,
                    world_size=self.world_size,
                    average=weight_average(model, config.ema_decay),
                )
                if resume_from is not None:
                    restore(resume_from, model, config, run, self._load_callbacks)
                history = run.history
                for callback in self.callbacks:
                    callback.on_fit_start(self, history)
                while history.epochs < config.epochs and not self.should_stop:
                    started = time.perf_counter()
                    order = epoch_order(count, draws, run.shuffle, batches.index_device)
                    order = order[: share * self.world_size][self.rank :: self.world_size]
                    loss_sum = torch.zeros((), device=self.device)
                    for start in range(0, share, config.batch_size):
                        lr = learning_rate(
                            config.lr, config.lr_schedule, run.step, total_steps, warmup_steps
                        )
                        loss_sum += run.update(
                            *batches(order[start : start + config.batch_size]), lr
                        )
                        if run.average is not None:
                            run.average.update_parameters(model)
                        run.step += 1
                        progress.step()
                    if self.world_size > 1:
                        import torch.distributed as dist

                        dist.all_reduce(loss_sum)
                    history.train_loss.append(float(loss_sum) / (share * self.world_size))
                    history.epoch_seconds.append(time.perf_counter() - started)
                    run.global_rng = torch.get_rng_state()
                    if validation is not None:
                        validation(model, self.device, history)
                    progress.epoch(history)
                    for callback in self.callbacks:
                        callback.on_epoch_end(self, history)
                if run.average is not None:
                    load_average(model, run.average)
                for callback in self.callbacks:
                    callback.on_fit_end(self, history)
        finally:
            progress.close()
        return history


def _default_recipe(model: DigitClassifier) -> str:
    return model.arch if model.arch in ("mlp", "cnn") else "resnet"

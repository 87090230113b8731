"""Training checkpoints: the state of a ``fit`` written to, and restored from, one file.

A checkpoint holds the model's weights, the optimizer's state, the random
generators, the step, the history, the settings, the training data's sha256 and
the number of processes, in the safetensors-with-JSON-header format of
:mod:`digitrec.io.tensorfile`. Resuming is all or nothing: if any part of the
file does not fit, everything already restored is put back and a
:class:`~digitrec.CheckpointError` says why.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..data import ImageDataset, dataset_sha256
from ..errors import CheckpointError
from ..io.tensorfile import pack, read_file, tensors_to_bytes, unpack, versions
from ..models import DigitClassifier
from ._engine import Step
from ._fitting import WeightAverage
from .config import TrainConfig
from .history import History

#: The format tag of training checkpoints (:meth:`Trainer.save_checkpoint`).
TRAINING_FORMAT = "digitrec.training/1"

# Settings added after the format's first release, with the value earlier runs used.
_LATER_SETTINGS = {
    "class_weights": None,
    "sampler": "shuffle",
    "precision": "fp32",
    "data_on_device": None,
    "ema_decay": None,
}
_LATER_MODEL_SETTINGS = {"task": "multiclass"}


@dataclass
class Run:
    """The state of one ``fit``: everything a training checkpoint must hold."""

    update: Step
    shuffle: torch.Generator
    train: ImageDataset
    validating: bool
    world_size: int = 1
    history: History = field(default_factory=History)
    step: int = 0
    global_rng: torch.Tensor | None = None
    average: WeightAverage | None = None
    _sha256: str | None = None

    def train_sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = dataset_sha256(self.train.images, self.train.labels)
        return self._sha256


def callback_keys(callbacks: Sequence[object]) -> list[str]:
    """Name each callback by its class and its place among those of its class."""
    seen: dict[str, int] = {}
    keys = []
    for callback in callbacks:
        name = type(callback).__name__
        keys.append(f"{name}.{seen.get(name, 0)}")
        seen[name] = seen.get(name, 0) + 1
    return keys


def checkpoint_bytes(
    model: DigitClassifier, config: TrainConfig, run: Run, callbacks: dict[str, Any]
) -> bytes:
    tensors = {f"model.{name}": tensor for name, tensor in model.state_dict().items()}
    state = {
        "step": run.update.state_dict(),
        "shuffle_rng": run.shuffle.get_state(),
        "global_rng": run.global_rng,
        "callbacks": {key: value for key, value in callbacks.items() if value},
    }
    if run.average is not None:
        state["average"] = run.average.state_dict()
    header = {
        "format": TRAINING_FORMAT,
        "config": config.to_dict(),
        "model_config": model.config.to_dict(),
        "epoch": run.history.epochs,
        "step": run.step,
        "world_size": run.world_size,
        "history": run.history.to_dict(),
        "train_sha256": run.train_sha256(),
        "state": pack(state, tensors, "state"),
        "versions": versions(),
    }
    return tensors_to_bytes(tensors, header)


def _check_belongs(
    path: str | os.PathLike[str],
    header: dict[str, Any],
    model: DigitClassifier,
    config: TrainConfig,
    run: Run,
) -> None:
    if header.get("format") != TRAINING_FORMAT:
        raise CheckpointError(
            f"{str(path)!r} is not a training checkpoint (format {header.get('format')!r}, "
            f"expected {TRAINING_FORMAT!r}); a model saved with digitrec.save loads with "
            "digitrec.load"
        )
    for key, ours, defaults, what in (
        ("config", config.to_dict(), _LATER_SETTINGS, "training settings"),
        ("model_config", model.config.to_dict(), _LATER_MODEL_SETTINGS, "model"),
    ):
        theirs = header.get(key, {})
        if isinstance(theirs, dict):
            # Checkpoints from before a setting existed ran with its default.
            theirs = {**defaults, **theirs}
        if not isinstance(theirs, dict) or theirs != ours:
            theirs = theirs if isinstance(theirs, dict) else {}
            differ = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
            raise CheckpointError(
                f"cannot resume from {str(path)!r}: its {what} differ in {differ} "
                f"(checkpoint {[theirs.get(k) for k in differ]}, "
                f"now {[ours.get(k) for k in differ]})"
            )
    # Checkpoints from before the world size was recorded come from one process.
    saved_world = header.get("world_size", 1)
    if saved_world != run.world_size:
        raise CheckpointError(
            f"cannot resume from {str(path)!r}: it was written by a run of {saved_world} "
            f"process(es) and this run has {run.world_size}; each process's share of every "
            "epoch depends on the number of processes, so resume with the same number"
        )
    if header.get("train_sha256") != run.train_sha256():
        raise CheckpointError(
            f"cannot resume from {str(path)!r}: it was trained on different data "
            "(the training set's sha256 differs)"
        )


def restore(
    path: str | os.PathLike[str],
    model: DigitClassifier,
    config: TrainConfig,
    run: Run,
    load_callbacks: Callable[[dict[str, Any]], None],
) -> None:
    """Restore ``model``, ``run`` and the callbacks (``load_callbacks``), entirely or not at all."""
    tensors, header = read_file(path, "training checkpoint")
    _check_belongs(path, header, model, config, run)
    saved = (
        {name: tensor.clone() for name, tensor in model.state_dict().items()},
        copy.deepcopy(run.update.state_dict()),
        run.shuffle.get_state(),
        torch.get_rng_state(),
        None if run.average is None else copy.deepcopy(run.average.state_dict()),
    )
    try:
        model.load_state_dict(
            {name[len("model.") :]: t for name, t in tensors.items() if name.startswith("model.")}
        )
        state = unpack(header["state"], tensors)
        run.update.load_state_dict(state["step"])
        run.shuffle.set_state(state["shuffle_rng"])
        torch.set_rng_state(state["global_rng"])
        if run.average is not None:
            run.average.load_state_dict(state["average"])
        history = History(**header["history"])
        step = int(header["step"])
        # Checkpoints from before callbacks kept state have none.
        callbacks = state.get("callbacks", {})
        if not isinstance(callbacks, dict) or not all(
            isinstance(v, dict) for v in callbacks.values()
        ):
            raise TypeError(f"callback states must be a dict of dicts, got {callbacks!r:.80}")
        load_callbacks(callbacks)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, CheckpointError) as error:
        model.load_state_dict(saved[0])
        run.update.load_state_dict(saved[1])
        run.shuffle.set_state(saved[2])
        torch.set_rng_state(saved[3])
        if run.average is not None and saved[4] is not None:
            run.average.load_state_dict(saved[4])
        raise CheckpointError(
            f"{str(path)!r} is an incomplete training checkpoint: {type(error).__name__}: {error}"
        ) from error
    run.history, run.step = history, step

"""Small hooks into :meth:`Trainer.fit <digitrec.Trainer.fit>`, as in skorch and Lightning.

A callback subclasses :class:`Callback` and overrides the hooks it needs; pass a
list of them as ``Trainer(callbacks=[...])``. Three come with digitrec:
:class:`Checkpoint` (a resumable training checkpoint after every epoch),
:class:`EarlyStopping` (stop when validation accuracy stops improving) and
:class:`MetricsLogger` (one JSON line of metrics per epoch).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Protocol, TextIO

import torch

from .._checks import check_bool, check_number, check_positive_int
from ..errors import InvalidInputError
from .config import TrainConfig
from .history import History

__all__ = ["Callback", "Checkpoint", "EarlyStopping", "MetricsLogger", "TrainerLike"]


class TrainerLike(Protocol):
    """What a callback sees of the trainer (:class:`~digitrec.Trainer` has all of it).

    Callbacks depend on this small protocol, not on the trainer's class, so the
    trainer imports its callbacks and nothing imports back.
    """

    @property
    def model(self) -> torch.nn.Module:
        """The model being trained."""

    @property
    def config(self) -> TrainConfig:
        """The resolved training settings."""

    #: Set to ``True`` to end training after the current epoch.
    should_stop: bool

    @property
    def is_main_process(self) -> bool:
        """Whether this process reports and writes files."""

    @property
    def has_validation(self) -> bool:
        """Whether the ``fit`` in progress measures validation accuracy."""

    def save_checkpoint(self, path: str | os.PathLike[str]) -> Path:
        """Write a resumable training checkpoint."""


class Callback:
    """Base class: every hook does nothing until overridden.

    Example:
        >>> class PrintLoss(digitrec.Callback):
        ...     def on_epoch_end(self, trainer, history):
        ...         print(f"loss {history.train_loss[-1]:.2f}")
        >>> _ = digitrec.Trainer(digitrec.DigitClassifier(seed=0), epochs=1, progress=False,
        ...                      callbacks=[PrintLoss()]).fit(digitrec.load_mnist("test")[:640])
        loss ...
    """

    def on_fit_start(self, trainer: TrainerLike, history: History) -> None:
        """Called once before the first epoch (after a resume, before the next epoch)."""

    def on_epoch_end(self, trainer: TrainerLike, history: History) -> None:
        """Called after each epoch, once ``history`` holds its figures."""

    def on_fit_end(self, trainer: TrainerLike, history: History) -> None:
        """Called once when training ends, also when a callback stopped it early."""


class Checkpoint(Callback):
    """Write a resumable training checkpoint after every ``every`` epochs (and the last).

    The file holds the model, the optimizer's state, the random generators, the
    epoch and the history; ``trainer.fit(train, resume_from=path)`` continues from
    it, and on the CPU ends with bit-identical weights to an uninterrupted run.
    Each write is atomic, so an interrupted run leaves the last complete
    checkpoint intact.

    Args:
        path: The checkpoint file (``.safetensors``), overwritten each time.
        every: Epochs between checkpoints.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "run.safetensors")
        >>> trainer = digitrec.Trainer(digitrec.DigitClassifier(seed=0), epochs=2,
        ...                            progress=False, callbacks=[digitrec.Checkpoint(path)])
        >>> _ = trainer.fit(digitrec.load_mnist("test")[:640])
        >>> digitrec.read_metadata(path)["epoch"]  # the header of the last checkpoint
        2
    """

    def __init__(self, path: str | os.PathLike[str], *, every: int = 1) -> None:
        check_positive_int(every, "every")
        self.path = Path(path).expanduser()
        self.every = every

    def on_epoch_end(self, trainer: TrainerLike, history: History) -> None:
        """Write the checkpoint when the epoch count is a multiple of ``every``."""
        if history.epochs % self.every == 0 or history.epochs == trainer.config.epochs:
            trainer.save_checkpoint(self.path)


class EarlyStopping(Callback):
    """Stop when validation accuracy has not improved for ``patience`` epochs.

    Needs ``fit(train, val)``. With ``restore_best`` the model ends with the
    weights of its best epoch.

    Args:
        patience: Epochs without improvement to tolerate.
        min_delta: The smallest gain in accuracy that counts as improvement.
        restore_best: Load the best epoch's weights when training ends.

    The best score is reset at the start of every ``fit``, so one instance can
    watch several runs.

    Example:
        >>> stop = digitrec.EarlyStopping(patience=1)
        >>> data = digitrec.load_mnist("test")
        >>> history = digitrec.Trainer(
        ...     digitrec.DigitClassifier(seed=0), epochs=40, lr=0.2, lr_schedule="constant",
        ...     progress=False, callbacks=[stop]).fit(data[:1000], val=data[1000:1500])
        >>> history.epochs == stop.stopped_epoch < 40, stop.best_epoch < stop.stopped_epoch
        (True, True)
    """

    def __init__(
        self, *, patience: int = 3, min_delta: float = 0.0, restore_best: bool = True
    ) -> None:
        self.patience = check_positive_int(patience, "patience")
        self.min_delta = check_number(min_delta, "min_delta", low=0.0, high=1.0, high_open=True)
        self.restore_best = check_bool(restore_best, "restore_best")
        self._reset()

    def _reset(self) -> None:
        self.best_accuracy = -1.0
        self.best_epoch = 0
        self.stopped_epoch: int | None = None
        self._best_state: dict[str, torch.Tensor] | None = None

    def on_fit_start(self, trainer: TrainerLike, history: History) -> None:
        """Forget any earlier run and check that validation data is there to watch."""
        if not trainer.has_validation:
            raise InvalidInputError(
                "EarlyStopping watches validation accuracy: call fit(train, val)"
            )
        self._reset()

    def on_epoch_end(self, trainer: TrainerLike, history: History) -> None:
        """Remember the best epoch; ask the trainer to stop after ``patience`` without gain."""
        accuracy = history.val_accuracy[-1]
        if accuracy > self.best_accuracy + self.min_delta:
            self.best_accuracy, self.best_epoch = accuracy, history.epochs
            if self.restore_best:
                self._best_state = {
                    k: v.detach().clone() for k, v in trainer.model.state_dict().items()
                }
        elif history.epochs - self.best_epoch >= self.patience:
            self.stopped_epoch = history.epochs
            trainer.should_stop = True

    def on_fit_end(self, trainer: TrainerLike, history: History) -> None:
        """Load the best epoch's weights if asked to."""
        if self.restore_best and self._best_state is not None:
            trainer.model.load_state_dict(self._best_state)


class MetricsLogger(Callback):
    """Write one JSON line of metrics per epoch (to stderr unless given a stream).

    Args:
        stream: A text stream, such as an open log file; ``None`` means ``sys.stderr``.

    Example:
        >>> import io, json
        >>> log = io.StringIO()
        >>> _ = digitrec.Trainer(digitrec.DigitClassifier(seed=0), epochs=2, progress=False,
        ...                      callbacks=[digitrec.MetricsLogger(log)]).fit(
        ...     digitrec.load_mnist("test")[:640])
        >>> [json.loads(line)["epoch"] for line in log.getvalue().splitlines()]
        [1, 2]
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def on_epoch_end(self, trainer: TrainerLike, history: History) -> None:
        """Write the epoch's line (on the main process only, under torchrun)."""
        if not trainer.is_main_process:
            return
        line = {
            "epoch": history.epochs,
            "train_loss": history.train_loss[-1],
            "seconds": history.epoch_seconds[-1],
        }
        if history.val_accuracy:
            line["val_accuracy"] = history.val_accuracy[-1]
        stream = self.stream if self.stream is not None else sys.stderr
        stream.write(json.dumps(line) + "\n")
        stream.flush()

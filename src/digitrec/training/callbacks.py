"""Small hooks into :meth:`Trainer.fit <digitrec.Trainer.fit>`, as in skorch and Lightning.

A callback subclasses :class:`Callback` and overrides the hooks it needs; pass a
list of them as ``Trainer(callbacks=[...])``. Three come with digitrec:
:class:`Checkpoint` (a resumable training checkpoint after every epoch, or
after each best one), :class:`EarlyStopping` (stop when a recorded figure, by
default validation accuracy, stops improving, and keep the best weights) and
:class:`MetricsLogger` (one JSON line of metrics per epoch). The first two
monitor any name that :meth:`History.values <digitrec.History.values>` takes:
``"val_loss"``, ``"val_accuracy"``, ``"val_auroc"`` (when
``Trainer(metrics=["auroc"])`` records it), ``"train_loss"``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TextIO

import torch

from .._checks import check_bool, check_positive_int
from ..errors import CheckpointError
from ._best import Best, Mode
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

    @property
    def recorded(self) -> tuple[str, ...]:
        """The names the ``fit`` in progress records (``History.values`` takes each)."""

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

    def state_dict(self) -> dict[str, Any]:
        """What a training checkpoint keeps of this callback: tensors, numbers, strings.

        Empty here. :meth:`Trainer.save_checkpoint <digitrec.Trainer.save_checkpoint>`
        stores it, and ``fit(train, resume_from=path)`` hands it back to the
        callback of the same class at the same place among those of its class,
        through :meth:`load_state_dict`, before :meth:`on_fit_start`.
        """
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state_dict` gave, when a ``fit`` resumes from a checkpoint.

        Raises:
            CheckpointError: If ``state`` is not what this callback stores.
        """


class Checkpoint(Callback):
    """Write a resumable training checkpoint after every ``every`` epochs (and the last).

    With ``save_best_only`` it writes only after an epoch that improves on the
    best value of ``monitor`` so far, so the file holds the best epoch.

    The file holds the model, the optimizer's state, the random generators, the
    epoch and the history; ``trainer.fit(train, resume_from=path)`` continues from
    it, and on the CPU ends with bit-identical weights to an uninterrupted run.
    Each write is atomic, so an interrupted run leaves the last complete
    checkpoint intact.

    Args:
        path: The checkpoint file (``.safetensors``), overwritten each time.
        every: Epochs between checkpoints (ignored with ``save_best_only``).
        monitor: The recorded name to watch with ``save_best_only``, such as
            ``"val_loss"`` or ``"val_auroc"``; default ``"val_accuracy"``.
        mode: ``"min"`` or ``"max"``; ``None``: ``"min"`` for names ending in
            ``loss``, ``"max"`` otherwise.
        save_best_only: Write only when ``monitor`` improves.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "run.safetensors")
        >>> trainer = digitrec.Trainer(digitrec.DigitClassifier(seed=0), epochs=2,
        ...                            progress=False, callbacks=[digitrec.Checkpoint(path)])
        >>> _ = trainer.fit(digitrec.load_mnist("test")[:640])
        >>> digitrec.read_metadata(path)["epoch"]  # the header of the last checkpoint
        2
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        every: int = 1,
        monitor: str = "val_accuracy",
        mode: Mode | None = None,
        save_best_only: bool = False,
    ) -> None:
        check_positive_int(every, "every")
        self.path = Path(path).expanduser()
        self.every = every
        self.save_best_only = check_bool(save_best_only, "save_best_only")
        self._best = Best(monitor, mode, 0.0)

    def on_fit_start(self, trainer: TrainerLike, history: History) -> None:
        """Check that the monitored name is recorded (with ``save_best_only``).

        After a resume, the best value so far comes from the resumed history.
        """
        self._best.reset()
        if self.save_best_only:
            self._best.check(trainer.recorded, trainer.has_validation, "Checkpoint")
            self._best.update(history)

    def on_epoch_end(self, trainer: TrainerLike, history: History) -> None:
        """Write the checkpoint every ``every`` epochs, or after each best epoch."""
        if self.save_best_only:
            if self._best.update(history):
                trainer.save_checkpoint(self.path)
        elif history.epochs % self.every == 0 or history.epochs == trainer.config.epochs:
            trainer.save_checkpoint(self.path)


class EarlyStopping(Callback):
    """Stop when a monitored figure has not improved for ``patience`` epochs.

    By default it watches validation accuracy (needs ``fit(train, val)``); any
    recorded name works, such as ``monitor="val_loss"`` or ``"val_auroc"``. With
    ``restore_best`` the model ends with the weights of its best epoch.

    Args:
        monitor: The recorded name to watch (see :attr:`History.names
            <digitrec.History.names>`).
        mode: ``"min"`` or ``"max"``; ``None``: ``"min"`` for names ending in
            ``loss``, ``"max"`` otherwise.
        patience: Epochs without improvement to tolerate.
        min_delta: The smallest change in the right direction that counts as improvement.
        restore_best: Load the best epoch's weights when training ends.

    The best score is reset at the start of every ``fit``, so one instance can
    watch several runs; a ``fit`` that resumes from a training checkpoint takes
    the best epoch from the resumed history and its weights from the checkpoint
    (:meth:`state_dict`), and ends as the uninterrupted run would have.

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
        self,
        *,
        monitor: str = "val_accuracy",
        mode: Mode | None = None,
        patience: int = 3,
        min_delta: float = 0.0,
        restore_best: bool = True,
    ) -> None:
        self.patience = check_positive_int(patience, "patience")
        self._best = Best(monitor, mode, min_delta)
        self.restore_best = check_bool(restore_best, "restore_best")
        self._reset()

    @property
    def monitor(self) -> str:
        """The recorded name watched."""
        return self._best.monitor

    @property
    def mode(self) -> Mode:
        """``"min"`` or ``"max"``."""
        return self._best.mode

    @property
    def min_delta(self) -> float:
        """The smallest change that counts as improvement."""
        return self._best.min_delta

    @property
    def best_score(self) -> float:
        """The best value of :attr:`monitor` so far (infinite before the first epoch)."""
        return self._best.value

    @property
    def best_accuracy(self) -> float:
        """:attr:`best_score`, under its name from when only accuracy was watched."""
        return self._best.value

    @property
    def best_epoch(self) -> int:
        """The epoch (counted from 1) of :attr:`best_score`; 0 before the first."""
        return self._best.epoch

    def _reset(self) -> None:
        self._best.reset()
        self.stopped_epoch: int | None = None
        self._best_state: dict[str, torch.Tensor] | None = None
        self._best_state_epoch = 0

    def on_fit_start(self, trainer: TrainerLike, history: History) -> None:
        """Forget any earlier run and check that the monitored figure is recorded.

        After a resume, the best epoch comes from the resumed history and its
        weights from the checkpoint (:meth:`load_state_dict`), or from the model
        when the best epoch is the checkpoint's own; if the run has already gone
        ``patience`` epochs without gain, it stops at once.
        """
        self._best.check(trainer.recorded, trainer.has_validation, "EarlyStopping")
        loaded = self._loaded
        self._loaded = None
        self._reset()
        if history.epochs == 0:
            return
        self._best.update(history)
        if self.restore_best:
            if loaded is not None and loaded[0] == self.best_epoch:
                self._check_weights(trainer.model, loaded[1])
                self._keep(loaded[1], self.best_epoch)
            elif self.best_epoch == history.epochs:
                self._keep(trainer.model.state_dict(), self.best_epoch)
        self._stop_if_stale(trainer, history)

    def on_epoch_end(self, trainer: TrainerLike, history: History) -> None:
        """Remember the best epoch; ask the trainer to stop after ``patience`` without gain."""
        if self._best.update(history):
            if self.restore_best:
                self._keep(trainer.model.state_dict(), self.best_epoch)
        else:
            self._stop_if_stale(trainer, history)

    def on_fit_end(self, trainer: TrainerLike, history: History) -> None:
        """Load the best epoch's weights if asked to."""
        if self.restore_best and self._best_state is not None:
            trainer.model.load_state_dict(self._best_state)

    def state_dict(self) -> dict[str, Any]:
        """The best epoch and, with ``restore_best``, its weights, for a training checkpoint.

        Example:
            >>> stop, model = digitrec.EarlyStopping(patience=2), digitrec.DigitClassifier(seed=0)
            >>> data = digitrec.load_mnist("test")
            >>> _ = digitrec.Trainer(model, epochs=2, progress=False,
            ...                      callbacks=[stop]).fit(data[:640], data[640:960])
            >>> state = stop.state_dict()
            >>> state["best_epoch"] == stop.best_epoch
            True
            >>> state["weights"].keys() == model.state_dict().keys()
            True
        """
        if self._best_state is None:
            return {"best_epoch": 0}
        return {"best_epoch": self._best_state_epoch, "weights": dict(self._best_state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Keep the best weights of a resumed run, for :meth:`on_fit_start` to check.

        Raises:
            CheckpointError: If ``state`` is not an :meth:`state_dict` of this class.
        """
        epoch = state.get("best_epoch") if isinstance(state, dict) else None
        weights = state.get("weights", {}) if isinstance(state, dict) else None
        if (
            not isinstance(epoch, int)
            or isinstance(epoch, bool)
            or epoch < 0
            or not isinstance(weights, dict)
            or not all(isinstance(t, torch.Tensor) for t in weights.values())
        ):
            raise CheckpointError(
                "the EarlyStopping state in the checkpoint must hold a best epoch >= 0 and "
                f"named weight tensors, got {type(state).__name__}"
            )
        self._loaded = (epoch, weights) if weights else None

    _loaded: tuple[int, dict[str, torch.Tensor]] | None = None

    def _keep(self, weights: Mapping[str, torch.Tensor], epoch: int) -> None:
        self._best_state = {name: t.detach().clone() for name, t in weights.items()}
        self._best_state_epoch = epoch

    def _stop_if_stale(self, trainer: TrainerLike, history: History) -> None:
        if history.epochs - self.best_epoch >= self.patience:
            self.stopped_epoch = history.epochs
            trainer.should_stop = True

    @staticmethod
    def _check_weights(model: torch.nn.Module, weights: Mapping[str, torch.Tensor]) -> None:
        own = model.state_dict()
        wrong = sorted(
            set(own) ^ set(weights)
            | {
                name
                for name in own.keys() & weights.keys()
                if own[name].shape != weights[name].shape
            }
        )
        if wrong:
            raise CheckpointError(
                f"the EarlyStopping weights in the checkpoint do not fit the model: {wrong[:5]}"
            )


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
        if history.val_loss:
            line["val_loss"] = history.val_loss[-1]
        if history.val_accuracy:
            line["val_accuracy"] = history.val_accuracy[-1]
        for name, values in history.val_metrics.items():
            line[f"val_{name}"] = values[-1]
        stream = self.stream if self.stream is not None else sys.stderr
        stream.write(json.dumps(line) + "\n")
        stream.flush()

"""What :meth:`Trainer.fit <digitrec.Trainer.fit>` records each epoch: :class:`History`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["History"]


@dataclass
class History:
    """What happened in each epoch of :meth:`Trainer.fit`.

    Attributes:
        train_loss: Mean cross-entropy over the training images, per epoch.
        val_accuracy: Accuracy on the validation set per epoch (empty without one).
        epoch_seconds: Wall-clock seconds of each epoch's training steps.

    Example:
        >>> history = digitrec.History(train_loss=[0.4, 0.2], epoch_seconds=[0.8, 0.7])
        >>> history.epochs
        2
        >>> print(history)
        epoch  train_loss  seconds
            1      0.4000     0.80
            2      0.2000     0.70
    """

    train_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        """The number of epochs recorded."""
        return len(self.train_loss)

    def to_dict(self) -> dict[str, list[float]]:
        """Return the history as a JSON-compatible dict.

        Example:
            >>> digitrec.History(train_loss=[0.5]).to_dict()["train_loss"]
            [0.5]
        """
        return asdict(self)

    def __str__(self) -> str:
        # Columns appear only when recorded for every epoch, so a partial history prints too.
        columns = [("train_loss", [f"{loss:10.4f}" for loss in self.train_loss])]
        if len(self.val_accuracy) == self.epochs and self.epochs:
            columns.append(("val_accuracy", [f"{100 * a:11.2f}%" for a in self.val_accuracy]))
        if len(self.epoch_seconds) == self.epochs and self.epochs:
            columns.append(("seconds", [f"{s:7.2f}" for s in self.epoch_seconds]))
        header = "epoch  " + "  ".join(name for name, _ in columns)
        rows = [
            f"{index + 1:5d}  " + "  ".join(cells[index] for _, cells in columns)
            for index in range(self.epochs)
        ]
        return "\n".join([header, *rows])

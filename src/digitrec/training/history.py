"""What :meth:`Trainer.fit <digitrec.Trainer.fit>` records each epoch: :class:`History`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InvalidInputError

__all__ = ["History"]


@dataclass
class History:
    """What happened in each epoch of :meth:`Trainer.fit`.

    Attributes:
        train_loss: Mean training loss (as the step computed it: with class
            weights and label smoothing) over the training images, per epoch.
        val_accuracy: Accuracy on the validation set per epoch (empty without
            one); for ``"multilabel"`` models, the fraction of labels right at 0.5.
        epoch_seconds: Wall-clock seconds of each epoch's training steps.
        val_loss: Mean loss on the validation set per epoch, without class weights
            or label smoothing: cross-entropy (negative log-likelihood) for
            ``"multiclass"`` models, binary cross-entropy for ``"multilabel"``.
        val_metrics: The other validation metrics asked for
            (``Trainer(metrics=...)``), each name's value per epoch.

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
    val_loss: list[float] = field(default_factory=list)
    val_metrics: dict[str, list[float]] = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        """The number of epochs recorded."""
        return len(self.train_loss)

    @property
    def names(self) -> tuple[str, ...]:
        """The names :meth:`values` takes: ``train_loss`` and whatever was recorded.

        Example:
            >>> digitrec.History(train_loss=[0.5], val_loss=[0.6]).names
            ('train_loss', 'val_loss')
        """
        names = ["train_loss"]
        names += [name for name in ("val_loss", "val_accuracy") if getattr(self, name)]
        names += [f"val_{name}" for name in self.val_metrics]
        return tuple(names)

    def values(self, name: str) -> list[float]:
        """Return the per-epoch values of ``train_loss``, ``val_loss``, ``val_<metric>``.

        Raises:
            InvalidInputError: If nothing of that name was recorded.

        Example:
            >>> history = digitrec.History(train_loss=[0.5, 0.4],
            ...                            val_metrics={"auroc": [0.8, 0.9]})
            >>> history.values("val_auroc")
            [0.8, 0.9]
        """
        series: Any = None
        if name in ("train_loss", "val_loss", "val_accuracy"):
            series = getattr(self, name) or None
        elif name.startswith("val_"):
            series = self.val_metrics.get(name[len("val_") :])
        if series is None:
            raise InvalidInputError(
                f"no values named {name!r} were recorded; expected one of {list(self.names)}"
            )
        return list(series)

    def to_dict(self) -> dict[str, Any]:
        """Return the history as a JSON-compatible dict.

        Example:
            >>> digitrec.History(train_loss=[0.5]).to_dict()["train_loss"]
            [0.5]
        """
        return asdict(self)

    def __str__(self) -> str:
        # Columns appear only when recorded for every epoch, so a partial history prints too.
        epochs = self.epochs
        columns = [("train_loss", [f"{loss:10.4f}" for loss in self.train_loss])]
        if len(self.val_loss) == epochs and epochs:
            columns.append(("val_loss", [f"{loss:8.4f}" for loss in self.val_loss]))
        if len(self.val_accuracy) == epochs and epochs:
            columns.append(("val_accuracy", [f"{100 * a:11.2f}%" for a in self.val_accuracy]))
        for name, series in self.val_metrics.items():
            if len(series) == epochs and epochs:
                width = max(len(name), 6)
                columns.append((name, [f"{value:{width}.4f}" for value in series]))
        if len(self.epoch_seconds) == epochs and epochs:
            columns.append(("seconds", [f"{s:7.2f}" for s in self.epoch_seconds]))
        header = "epoch  " + "  ".join(name for name, _ in columns)
        rows = [
            f"{index + 1:5d}  " + "  ".join(cells[index] for _, cells in columns)
            for index in range(epochs)
        ]
        return "\n".join([header, *rows])

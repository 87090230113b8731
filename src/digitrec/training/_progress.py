"""Training progress on stderr: a tqdm bar on a terminal, one line per epoch elsewhere."""

from __future__ import annotations

from typing import Any, TextIO

from .history import History


class Progress:
    """A tqdm bar on a terminal, one line per epoch elsewhere, nothing when disabled."""

    def __init__(self, enabled: bool, epochs: int, steps_per_epoch: int, stream: TextIO) -> None:
        self._epochs = epochs
        self._stream = stream if enabled else None
        self._bar: Any = None
        if enabled and stream.isatty():
            try:
                from tqdm.auto import tqdm
            except ImportError:
                return
            self._bar = tqdm(total=epochs * steps_per_epoch, unit="step", file=stream, leave=False)

    def step(self) -> None:
        if self._bar is not None:
            self._bar.update()

    def epoch(self, history: History) -> None:
        if self._stream is None:
            return
        val = f"  val_loss {history.val_loss[-1]:.4f}" if history.val_loss else ""
        if history.val_accuracy:
            val += f"  val_accuracy {100 * history.val_accuracy[-1]:.2f}%"
        line = (
            f"epoch {history.epochs}/{self._epochs}  train_loss {history.train_loss[-1]:.4f}"
            f"{val}  {history.epoch_seconds[-1]:.2f}s"
        )
        if self._bar is not None:
            self._bar.write(line, file=self._stream)
        else:
            print(line, file=self._stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

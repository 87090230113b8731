"""The best value so far of a figure a callback monitors (``EarlyStopping``, ``Checkpoint``)."""

from __future__ import annotations

import math
from typing import Literal

from .._checks import check_choice, check_number
from ..errors import InvalidInputError
from .history import History

Mode = Literal["min", "max"]


class Best:
    """The best value so far of a monitored name, and whether a new one improves on it."""

    def __init__(self, monitor: str, mode: Mode | None, min_delta: float) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise InvalidInputError(f"monitor must be a recorded name, got {monitor!r}")
        if mode is None:
            mode = "min" if monitor.endswith("loss") else "max"
        self.monitor = monitor
        self.mode: Mode = check_choice(mode, "mode", ("min", "max"))
        self.min_delta = check_number(min_delta, "min_delta", low=0.0)
        self.reset()

    def reset(self) -> None:
        self.value = math.inf if self.mode == "min" else -math.inf
        self.epoch = 0
        self.seen = 0  # epochs of the history taken so far

    def check(self, recorded: tuple[str, ...], has_validation: bool, who: str) -> None:
        """Raise unless ``monitor`` is among the names the ``fit`` records."""
        if self.monitor not in recorded:
            hint = "; call fit(train, val)" if self.monitor.startswith("val_") else ""
            raise InvalidInputError(
                f"{who} monitors {self.monitor!r}, which this fit does not record (it records "
                f"{list(recorded)}){hint if not has_validation else ''}"
            )

    def update(self, history: History) -> bool:
        """Take the epochs of ``history`` not yet seen; return whether the last is the new best.

        After a resume the history already holds the earlier epochs: they are
        taken in turn, so the best value and epoch are those of an uninterrupted run.
        """
        values = history.values(self.monitor) if history.epochs > self.seen else []
        improved = False
        for epoch in range(self.seen + 1, history.epochs + 1):
            value = values[epoch - 1]
            gain = self.value - value if self.mode == "min" else value - self.value
            improved = not math.isnan(value) and gain > self.min_delta
            if improved:
                self.value, self.epoch = value, epoch
        self.seen = history.epochs
        return improved

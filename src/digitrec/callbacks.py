"""Compatibility alias: the callbacks live in :mod:`digitrec.training.callbacks`.

``from digitrec.callbacks import EarlyStopping`` keeps working; new code imports
them from ``digitrec`` itself.
"""

from .training.callbacks import Callback, Checkpoint, EarlyStopping, MetricsLogger

__all__ = ["Callback", "Checkpoint", "EarlyStopping", "MetricsLogger"]

"""Training: settings and recipes, the loop, its callbacks, and resumable checkpoints.

``config`` holds :class:`TrainConfig` and the named :data:`RECIPES`, ``history``
what each epoch recorded, ``trainer`` the :class:`Trainer` loop over in-memory
batches, and ``callbacks`` the hooks into it (checkpoints, early stopping,
metric logs), which see the trainer only through a small protocol. The private
modules hold the fused and autograd steps (``_engine``), joining a ``torchrun``
launch (``_distributed``), training checkpoints (``_state``) and progress output.
Training sits on top of models, data and evaluation; only the command line and
user code sit above it.
"""

from ._state import TRAINING_FORMAT
from .callbacks import Callback, Checkpoint, EarlyStopping, MetricsLogger
from .config import RECIPES, LRSchedule, OptimizerName, TrainConfig
from .history import History
from .trainer import Trainer

__all__ = [
    "RECIPES",
    "TRAINING_FORMAT",
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "History",
    "LRSchedule",
    "MetricsLogger",
    "OptimizerName",
    "TrainConfig",
    "Trainer",
]

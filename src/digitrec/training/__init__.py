"""Training: settings and recipes, the loop, its callbacks, and resumable checkpoints.

``config`` holds :class:`TrainConfig` (including class weights, the balanced
sampler, mixed precision and data placement) and the named :data:`RECIPES`,
``history`` what each epoch recorded (losses and validation metrics),
``trainer`` the :class:`Trainer` loop over in-memory batches, ``stats`` the
pixel statistics a model's normalization comes from (:func:`pixel_stats`), and
``callbacks`` the hooks into it (checkpoints, early stopping on any recorded
metric, metric logs), which see the trainer only through a small protocol. The
private modules hold the fused and autograd steps (``_engine``), the loss and
sampler weights (``_objective``), validation metrics (``_metrics``), the parts
of a fit around the steps (``_fitting``), joining a ``torchrun`` launch
(``_distributed``), training checkpoints (``_state``) and progress output.
Training sits on top of models, data, inference and evaluation; only the
command line and user code sit above it.
"""

from ._metrics import MetricFunction
from ._state import TRAINING_FORMAT
from .callbacks import Callback, Checkpoint, EarlyStopping, MetricsLogger
from .config import RECIPES, LRSchedule, OptimizerName, Precision, Sampler, TrainConfig
from .history import History
from .stats import pixel_stats
from .trainer import Trainer

__all__ = [
    "RECIPES",
    "TRAINING_FORMAT",
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "History",
    "LRSchedule",
    "MetricFunction",
    "MetricsLogger",
    "OptimizerName",
    "Precision",
    "Sampler",
    "TrainConfig",
    "Trainer",
    "pixel_stats",
]

"""How well a model does, and how far to trust each answer.

``accuracy`` gives the notebook's summary (:func:`evaluate_accuracy`),
``report`` the per-class metrics, ROC AUC and calibration errors a clinical
reader asks for (:func:`evaluate`, :class:`ClassificationReport`), and
``calibration`` temperature scaling (:func:`calibrate`). Evaluation predicts
through :mod:`digitrec.inference`, the same path every caller uses, and sits
below training, which measures validation data with it.
"""

from .accuracy import AccuracyResult, evaluate_accuracy
from .calibration import calibrate
from .report import ClassificationReport, evaluate

__all__ = ["AccuracyResult", "ClassificationReport", "calibrate", "evaluate", "evaluate_accuracy"]

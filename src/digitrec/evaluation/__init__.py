"""How well a model does, and how far to trust each answer.

``accuracy`` gives the notebook's summary (:func:`evaluate_accuracy`),
``report`` the per-class metrics, ROC AUC and calibration errors a clinical
reader asks for (:func:`evaluate`, :class:`ClassificationReport`), and
``calibration`` temperature scaling (:func:`calibrate`). ``bootstrap`` puts
percentile-bootstrap confidence intervals on them (:func:`bootstrap_ci`, over
images or patients), ``thresholds`` chooses operating points for a target
sensitivity on validation data (:func:`choose_threshold`) and measures them on
test data, and ``multilabel`` measures each finding of multi-label data on its
own (:func:`multilabel_metrics`, :func:`evaluate_multilabel`). Evaluation
predicts through :mod:`digitrec.inference`, the same path every caller uses,
and sits below training, which measures validation data with it.
"""

from .accuracy import AccuracyResult, evaluate_accuracy
from .bootstrap import BootstrapMetric, BootstrapReport, Interval, bootstrap_ci, bootstrap_ci_from
from .calibration import calibrate
from .multilabel import (
    MultilabelReport,
    evaluate_multilabel,
    multilabel_metrics,
    multilabel_thresholds,
)
from .report import ClassificationReport, evaluate
from .thresholds import (
    OperatingPoint,
    choose_threshold,
    measure_threshold,
    threshold_for_sensitivity,
)

__all__ = [
    "AccuracyResult",
    "BootstrapMetric",
    "BootstrapReport",
    "ClassificationReport",
    "Interval",
    "MultilabelReport",
    "OperatingPoint",
    "bootstrap_ci",
    "bootstrap_ci_from",
    "calibrate",
    "choose_threshold",
    "evaluate",
    "evaluate_accuracy",
    "evaluate_multilabel",
    "measure_threshold",
    "multilabel_metrics",
    "multilabel_thresholds",
    "threshold_for_sensitivity",
]

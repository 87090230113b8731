"""The metrics a clinical reader asks for: :class:`ClassificationReport` and :func:`evaluate`."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .._checks import check_positive_int
from .._device import DeviceLike
from .._model_inputs import model_batch
from .._runtime import model_device
from ..data import ImageDataset
from ..models import DigitClassifier
from ..models._batches import logits_in_batches
from ..models._validate import check_labels, check_model
from ..models.ood import ood_scores
from .ood import ood_metrics

__all__ = ["ClassificationReport", "evaluate"]

_CALIBRATION_BINS = 15
_COVERAGES = (1.0, 0.9, 0.8)


@dataclass(frozen=True)
class ClassificationReport:
    """The metrics a clinical reader asks for, from :func:`evaluate`.

    Per-class values are tensors in label order. Probabilities are the model's
    calibrated ones (its softmax temperature applied, see :func:`calibrate`).

    Attributes:
        class_names: Names of the classes (``"0"``, ``"1"``, ... when unknown).
        support: Number of images of each class.
        accuracy: Fraction of images labelled correctly.
        balanced_accuracy: Mean of the sensitivities of the classes present in the data.
        confusion_matrix: ``int64`` counts, rows the actual class, columns the predicted.
        precision: Per class, the fraction of images predicted as the class that are it.
        sensitivity: Per class, the fraction of the class's images found (recall).
        specificity: Per class, the fraction of other images not predicted as the class.
        f1: Per class, the harmonic mean of precision and sensitivity.
        auroc: ROC AUC: of the positive class (label 1) for two classes, the macro
            one-vs-rest mean for more, over the classes present in the data (a class
            with no images has no ROC curve); ``nan`` when none has one.
        ece: Expected calibration error of the top-label confidence, 15 equal bins.
        nll: Mean negative log-likelihood of the actual labels.
        brier: Half the mean squared error of the probability vectors: for two
            classes exactly the usual Brier score of the positive class, in [0, 1].
        temperature: The softmax temperature the probabilities were computed with.
        accuracy_at_coverage: Accuracy on the most confident 100%, 90% and 80% of
            the images (the risk-coverage summary for abstention).
        calibration_bins: Per confidence bin (15 equal bins of [0, 1]): the count
            of images, their mean confidence and their accuracy (``nan`` when empty).
        ood_auroc: With ``evaluate(..., ood=images)``: how well
            :func:`~digitrec.ood_scores` separates ``data`` from those images (ROC
            AUC, out-of-distribution positive); ``None`` otherwise.
        ood_fpr_at_95_tpr: The share of the ``ood`` images accepted at the score
            that accepts 95% of ``data``; ``None`` without ``ood``.

    Example:
        >>> test = digitrec.load_mnist("test")[:200]
        >>> report = digitrec.evaluate(digitrec.DigitClassifier(seed=0), test)
        >>> report.confusion_matrix.shape, report.sensitivity.shape
        (torch.Size([10, 10]), torch.Size([10]))
        >>> sorted(report.to_dict())[:3]
        ['accuracy', 'accuracy_at_coverage', 'auroc']
    """

    class_names: tuple[str, ...]
    support: torch.Tensor
    accuracy: float
    balanced_accuracy: float
    confusion_matrix: torch.Tensor
    precision: torch.Tensor
    sensitivity: torch.Tensor
    specificity: torch.Tensor
    f1: torch.Tensor
    auroc: float
    ece: float
    nll: float
    brier: float
    temperature: float
    accuracy_at_coverage: dict[float, float]
    calibration_bins: dict[str, torch.Tensor]
    ood_auroc: float | None = None
    ood_fpr_at_95_tpr: float | None = None

    @property
    def total(self) -> int:
        """Number of images evaluated."""
        return int(self.support.sum())

    def to_dict(self) -> dict[str, Any]:
        """Return every figure as plain Python values, ready for ``json.dumps``.

        Undefined values (``nan``: an empty calibration bin, a ROC AUC without both
        classes) become ``None``, so the result is strict JSON.

        Example:
            >>> report = digitrec.evaluate(digitrec.DigitClassifier(seed=0),
            ...                            digitrec.load_mnist("test")[:50])
            >>> report.to_dict()["confusion_matrix"][0][:3]
            [...]
        """
        result: dict[str, Any] = {}
        for key, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                result[key] = value.tolist()
            elif isinstance(value, dict):
                result[key] = {
                    str(k): v.tolist() if isinstance(v, torch.Tensor) else v
                    for k, v in value.items()
                }
            elif isinstance(value, tuple):
                result[key] = list(value)
            else:
                result[key] = value
        cleaned: dict[str, Any] = _without_nan(result)
        return cleaned

    def __str__(self) -> str:
        width = max(9, *(len(name) for name in self.class_names))
        lines = [
            f"{'class':<{width}}  support  precision  sensitivity  specificity      f1",
        ]
        for index, name in enumerate(self.class_names):
            rates = (self.precision, self.sensitivity, self.specificity, self.f1)
            precision, sensitivity, specificity, f1 = (float(rate[index]) for rate in rates)
            lines.append(
                f"{name:<{width}}  {int(self.support[index]):7d}  {precision:9.3f}"
                f"  {sensitivity:11.3f}  {specificity:11.3f}  {f1:6.3f}"
            )
        coverage = ", ".join(
            f"{100 * share:.0f}%: {100 * value:.2f}%"
            for share, value in self.accuracy_at_coverage.items()
        )
        lines += [
            "",
            f"images: {self.total}   accuracy: {100 * self.accuracy:.2f}%   "
            f"balanced accuracy: {100 * self.balanced_accuracy:.2f}%   ROC AUC: {self.auroc:.4f}",
            f"ECE (15 bins): {self.ece:.4f}   NLL: {self.nll:.4f}   Brier: {self.brier:.4f}   "
            f"temperature: {self.temperature:.3f}",
            f"accuracy at coverage: {coverage}",
            *(
                [
                    f"out-of-distribution set: AUROC {self.ood_auroc:.4f}, "
                    f"accepted at 95% TPR {100 * (self.ood_fpr_at_95_tpr or 0.0):.2f}%"
                ]
                if self.ood_auroc is not None
                else []
            ),
            "confusion matrix (rows actual, columns predicted):",
        ]
        digits = len(str(int(self.confusion_matrix.max()))) if self.total else 1
        cell = max(digits, *(len(name) for name in self.class_names))
        lines.append(" " * (width + 2) + " ".join(f"{name:>{cell}}" for name in self.class_names))
        for index, name in enumerate(self.class_names):
            row = " ".join(f"{int(count):>{cell}}" for count in self.confusion_matrix[index])
            lines.append(f"{name:<{width}}  {row}")
        return "\n".join(lines)


def _without_nan(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nan(item) for item in value]
    return value


def _accuracy_at_coverage(confidence: torch.Tensor, correct: torch.Tensor) -> dict[float, float]:
    order = torch.argsort(confidence, descending=True, stable=True)
    ranked = correct[order].to(torch.float64)
    result = {}
    for share in _COVERAGES:
        kept = max(1, math.ceil(share * len(ranked)))
        result[share] = float(ranked[:kept].mean())
    return result


def _calibration_bins(confidence: torch.Tensor, correct: torch.Tensor) -> dict[str, torch.Tensor]:
    # Bin i holds confidences in (i/15, (i+1)/15], as torchmetrics bins them.
    index = torch.clamp(torch.ceil(confidence.double() * _CALIBRATION_BINS).long() - 1, min=0)
    count = torch.bincount(index, minlength=_CALIBRATION_BINS)
    total_confidence = torch.bincount(
        index, weights=confidence.double(), minlength=_CALIBRATION_BINS
    )
    total_correct = torch.bincount(index, weights=correct.double(), minlength=_CALIBRATION_BINS)
    return {
        "count": count,
        "confidence": total_confidence / count,
        "accuracy": total_correct / count,
    }


def evaluate(
    model: DigitClassifier,
    data: ImageDataset,
    *,
    device: DeviceLike | None = None,
    batch_size: int = 1024,
    prepare: bool | None = None,
    ood: Any = None,
) -> ClassificationReport:
    """Measure everything a clinical reader asks for: per-class rates, AUROC, calibration.

    The metrics come from torchmetrics (installed with digitrec); the tests check
    each one against scikit-learn.

    Args:
        model: The classifier; its softmax temperature is applied to its logits.
        data: Labelled images that fit the model.
        device: Where to compute the predictions; ``None``: where the model is.
        batch_size: Images per forward pass.
        prepare: Bring images of another size than the model's input to it as the
            model's metadata says (see :func:`~digitrec.predict_proba`); ``None``
            prepares only images that do not fit, ``False`` refuses them.
        ood: Optional images unlike ``data`` (a data set, a batch or a list of
            images or files, as for :func:`~digitrec.ood_scores`): the report then
            gives how well the model's out-of-distribution scores separate them.

    Returns:
        The :class:`ClassificationReport`; ``print(report)`` gives a table.

    Raises:
        InvalidTypeError: If ``data`` is not an :class:`~digitrec.ImageDataset`.
        InvalidInputError: If the data is empty or does not fit the model.

    Example:
        >>> report = digitrec.evaluate(digitrec.DigitClassifier(seed=0),
        ...                            digitrec.load_mnist("test")[:100])
        >>> 0.0 <= report.ece <= 1.0 and report.total == 100
        True
    """
    # torchmetrics takes over a second to import: load it when a report is asked for.
    from torchmetrics.functional import classification as metrics

    model = check_model(model)
    data = check_labels(model, data)
    images = model_batch(model, data, prepare, "data images")
    size = check_positive_int(batch_size, "batch_size")
    logits = logits_in_batches(model, images, model_device(model, device), size).double()
    temperature = float(model.temperature)
    log_probs = torch.log_softmax(logits / temperature, dim=1)
    probs = log_probs.exp()
    labels = data.labels
    classes = model.num_classes
    confidence, predicted = probs.max(dim=1)
    correct = predicted == labels

    def per_class(function: Any) -> torch.Tensor:
        values: torch.Tensor = function(probs, labels, num_classes=classes, average="none")
        return values.to(torch.float64)

    support = torch.bincount(labels, minlength=classes)
    # ROC AUC is undefined for a class with no positive or no negative image: average
    # over the classes where it is defined instead of counting those as 0.
    defined = (support > 0) & (support < len(labels))
    if not bool(defined.any()):
        auroc = math.nan
    elif classes == 2:
        auroc = float(metrics.binary_auroc(probs[:, 1], labels))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torchmetrics' note on absent classes
            per_class_auroc = metrics.multiclass_auroc(
                probs, labels, num_classes=classes, average="none"
            )
        auroc = float(per_class_auroc[defined].mean())
    names = model.class_names or data.class_names or tuple(str(k) for k in range(classes))
    if len(names) != classes:
        names = tuple(str(k) for k in range(classes))
    one_hot = F.one_hot(labels, classes).to(torch.float64)
    sensitivity = per_class(metrics.multiclass_recall)
    return ClassificationReport(
        class_names=tuple(names),
        support=support,
        accuracy=float(correct.double().mean()),
        # Over the classes present in the data; torchmetrics' "macro" also counts a
        # class that is only predicted, as 0.
        balanced_accuracy=float(sensitivity[support > 0].mean()),
        confusion_matrix=metrics.multiclass_confusion_matrix(probs, labels, num_classes=classes),
        precision=per_class(metrics.multiclass_precision),
        sensitivity=sensitivity,
        specificity=per_class(metrics.multiclass_specificity),
        f1=per_class(metrics.multiclass_f1_score),
        auroc=auroc,
        ece=float(
            metrics.multiclass_calibration_error(
                probs, labels, num_classes=classes, n_bins=_CALIBRATION_BINS, norm="l1"
            )
        ),
        nll=float(F.nll_loss(log_probs, labels)),
        brier=float(((probs - one_hot) ** 2).sum(dim=1).mean() / 2),
        temperature=temperature,
        accuracy_at_coverage=_accuracy_at_coverage(confidence, correct),
        calibration_bins=_calibration_bins(confidence, correct),
        **_ood_separation(model, images, ood, device, size),
    )


def _ood_separation(
    model: DigitClassifier, images: torch.Tensor, ood: Any, device: DeviceLike | None, size: int
) -> dict[str, float]:
    if ood is None:
        return {}
    outside = model_batch(model, ood, None, "ood images")
    inside_scores = ood_scores(model, images, device=device, batch_size=size)
    outside_scores = ood_scores(model, outside, device=device, batch_size=size)
    auroc, fpr = ood_metrics(inside_scores, outside_scores)
    return {"ood_auroc": auroc, "ood_fpr_at_95_tpr": fpr}

"""Predictions from a trained :class:`~digitrec.DigitClassifier`: the one path every caller uses.

Every function here switches the model to evaluation mode and no-grad inference
for the call only, and puts the model back in the mode it was in. ``device=None``
computes where the model's weights are; evaluation, the command line and the
server all predict through these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ._checks import check_number, check_positive_int
from ._device import DeviceLike
from ._model_inputs import model_batch, model_image
from ._runtime import model_device
from .errors import InvalidInputError
from .models import DigitClassifier
from .models._batches import logits_in_batches
from .models._validate import check_model

__all__ = [
    "ABSTAINED",
    "OUT_OF_DISTRIBUTION",
    "Prediction",
    "classify",
    "get_predicted_label",
    "predict",
    "predict_or_abstain",
    "predict_proba",
]

#: The label :func:`predict_or_abstain` gives an image it is not confident about.
ABSTAINED = -1
#: The label :func:`predict_or_abstain` gives an image unlike the training data.
OUT_OF_DISTRIBUTION = -2

_DEFAULT_BATCH_SIZE = 1024


def _batch_logits(
    model: Any, images: Any, device: DeviceLike | None, batch_size: int, prepare: bool | None
) -> torch.Tensor:
    checked = check_model(model)
    batch = model_batch(checked, images, prepare)
    size = check_positive_int(batch_size, "batch_size")
    return logits_in_batches(checked, batch, model_device(checked, device), size)


def predict_proba(
    model: DigitClassifier,
    images: Any,
    *,
    device: DeviceLike | None = None,
    batch_size: int = _DEFAULT_BATCH_SIZE,
    prepare: bool | None = None,
) -> torch.Tensor:
    """Return class probabilities for a batch of images.

    Args:
        model: The classifier; it is moved to ``device`` if one is given.
        images: An :class:`~digitrec.ImageDataset`; a tensor or numpy array of
            shape ``(N, H, W)``, ``(N, C, H, W)`` or ``(N, H, W, C)`` holding ``uint8``
            (0-255) or float (0-1) pixels; or a list of single images of any size
            (arrays, tensors, PIL images, or files as paths or bytes).
        device: Where to compute: ``"cpu"``, ``"cuda"``, ``"mps"`` or ``"auto"``;
            ``None`` (the default) computes where the model's weights are.
        batch_size: Images per forward pass.
        prepare: Bring raw images to the model as its metadata says (digit
            models: :func:`~digitrec.prepare_digits`; others: resized with
            padding). ``None`` (the default) prepares files and images that do
            not already have the model's input shape; ``True`` prepares
            everything; ``False`` nothing.

    Returns:
        ``float32`` CPU tensor of shape ``(N, num_classes)``; each row sums to 1.
        The model's softmax temperature (see :func:`~digitrec.calibrate`) is applied.
        For a ``"multilabel"`` model each column is its own label's sigmoid
        probability, and rows need not sum to 1.

    Raises:
        InvalidInputError: If the images do not fit the model's input shape.
        InvalidTypeError: For unsupported array types or dtypes.

    Example:
        >>> model = digitrec.DigitClassifier(seed=0)
        >>> probs = digitrec.predict_proba(model, torch.zeros(3, 28, 28))
        >>> probs.shape, bool(torch.allclose(probs.sum(1), torch.ones(3)))
        (torch.Size([3, 10]), True)
    """
    logits = _batch_logits(model, images, device, batch_size, prepare)
    return check_model(model).probabilities(logits)


def predict(
    model: DigitClassifier,
    images: Any,
    *,
    device: DeviceLike | None = None,
    batch_size: int = _DEFAULT_BATCH_SIZE,
    prepare: bool | None = None,
) -> torch.Tensor:
    """Return the predicted class index for each image of a batch.

    Takes the same arguments as :func:`predict_proba`.

    Returns:
        ``int64`` CPU tensor of shape ``(N,)``; for a ``"multilabel"`` model,
        ``(N, labels)`` of 0 and 1 (each label's probability above 0.5).

    Example:
        >>> model = digitrec.DigitClassifier(seed=0)
        >>> digitrec.predict(model, torch.zeros(3, 1, 28, 28, dtype=torch.uint8)).shape
        torch.Size([3])
    """
    logits = _batch_logits(model, images, device, batch_size, prepare)
    if model.config.task == "multilabel":
        return (logits > 0).to(torch.int64)  # probability above 0.5, label by label
    return logits.argmax(dim=1)


def _single_label(model: DigitClassifier, what: str) -> DigitClassifier:
    if model.config.task == "multilabel":
        raise InvalidInputError(
            f"{what} gives one class per image, but the model is multilabel; use "
            "predict_proba (one probability per label) or predict (0/1 per label)"
        )
    return model


def predict_or_abstain(
    model: DigitClassifier,
    images: Any,
    *,
    min_confidence: float,
    device: DeviceLike | None = None,
    batch_size: int = _DEFAULT_BATCH_SIZE,
    prepare: bool | None = None,
) -> torch.Tensor:
    """Predict each image's class, or abstain where the model is not confident enough.

    An image whose highest class probability (after the model's temperature, so
    calibrate first with :func:`~digitrec.calibrate`) is below ``min_confidence``
    gets :data:`ABSTAINED` (-1) instead of a label, to be referred to a person. When
    the model carries out-of-distribution statistics (:func:`~digitrec.fit_ood`),
    an image unlike the training data gets :data:`OUT_OF_DISTRIBUTION` (-2), whatever
    its confidence: the two codes say why the model abstained.
    :attr:`~digitrec.evaluation.ClassificationReport.accuracy_at_coverage`
    shows what each share of abstentions buys.

    Args:
        model: The classifier.
        images: As for :func:`predict_proba`.
        min_confidence: The probability a prediction needs, in ``[0, 1]``.
        device: Where to compute; ``None`` computes where the model's weights are.
        batch_size: Images per forward pass.
        prepare: As for :func:`predict_proba`.

    Returns:
        ``int64`` CPU tensor of shape ``(N,)``: class indices, ``ABSTAINED`` or
        ``OUT_OF_DISTRIBUTION``.

    Raises:
        InvalidInputError: If ``min_confidence`` is outside ``[0, 1]``, or the
            images do not fit the model.

    Example:
        >>> model = digitrec.DigitClassifier(seed=0)
        >>> labels = digitrec.predict_or_abstain(model, torch.zeros(4, 28, 28), min_confidence=0.99)
        >>> labels.tolist()  # an untrained model is never that sure
        [-1, -1, -1, -1]
    """
    checked = _single_label(check_model(model), "predict_or_abstain")
    check_number(min_confidence, "min_confidence", low=0.0, high=1.0)
    batch = model_batch(checked, images, prepare)
    size = check_positive_int(batch_size, "batch_size")
    target = model_device(checked, device)
    logits, unusual = _logits_and_unusual(checked, batch, target, size)
    confidence, labels = checked.probabilities(logits).max(dim=1)
    labels = torch.where(confidence >= min_confidence, labels, torch.full_like(labels, ABSTAINED))
    if unusual is not None:
        labels = torch.where(unusual, torch.full_like(labels, OUT_OF_DISTRIBUTION), labels)
    return labels


def get_predicted_label(
    model: DigitClassifier,
    image: Any,
    *,
    device: DeviceLike | None = None,
    prepare: bool | None = None,
) -> int:
    """Return the predicted class index of one image.

    Args:
        model: The classifier; it is moved to ``device`` if one is given.
        image: A tensor or numpy array of shape ``(H, W)``, ``(C, H, W)`` or
            ``(H, W, C)`` with ``uint8`` (0-255) or float (0-1) pixels, a PIL
            image, or an image file (path or bytes, anything
            :func:`~digitrec.read_image` reads), of any size.
        device: Where to compute; ``None`` computes where the model's weights are.
        prepare: Bring raw images to the model as its metadata says (digit
            models: :func:`~digitrec.prepare_digits`; others: resized with
            padding). ``None`` (the default) prepares files and images that do
            not already have the model's input shape; ``True`` prepares
            everything; ``False`` nothing.

    Returns:
        The class index, a Python ``int``.

    Raises:
        InvalidInputError: If the image does not fit the model's input shape.
        InvalidTypeError: For unsupported types or dtypes.

    Example:
        >>> test = digitrec.load_mnist("test")
        >>> image, label = test[0]
        >>> digitrec.get_predicted_label(digitrec.DigitClassifier(seed=0), image) in range(10)
        True
    """
    model = check_model(model)
    batch = model_image(model, image, prepare)
    _single_label(model, "get_predicted_label")
    logits = logits_in_batches(model, batch, model_device(model, device), 1)
    return int(logits.argmax(dim=1).item())


@dataclass(frozen=True)
class Prediction:
    """One image's answer from :func:`classify`: the class, its probabilities, and trust.

    Attributes:
        class_index: The predicted class.
        label: Its name (the model's class name, or the index as a string).
        probabilities: Every class's probability, calibrated where the model is.
        confidence: The predicted class's probability.
        out_of_distribution: Whether the image is unlike the training data, by the
            model's fitted statistics (:func:`~digitrec.fit_ood`); ``None`` when the
            model has none.

    Example:
        >>> answer = digitrec.Prediction(1, "1", (0.1, 0.9), 0.9, None)
        >>> answer.label, answer.confidence
        ('1', 0.9)
    """

    class_index: int
    label: str
    probabilities: tuple[float, ...]
    confidence: float
    out_of_distribution: bool | None


def classify(
    model: DigitClassifier,
    images: Any,
    *,
    device: DeviceLike | None = None,
    batch_size: int = _DEFAULT_BATCH_SIZE,
    prepare: bool | None = None,
) -> list[Prediction]:
    """Label raw images the way the command line and the server do: one answer each.

    Images take the library's one road: read (files or bytes), prepared as the
    model's metadata says, predicted, and checked against the model's
    out-of-distribution statistics when it has them.

    Args:
        model: The classifier.
        images: As for :func:`predict_proba`: a batch, a data set, or a list of
            single images or image files of any size.
        device: Where to compute; ``None`` computes where the model's weights are.
        batch_size: Images per forward pass.
        prepare: As for :func:`predict_proba`.

    Returns:
        One :class:`Prediction` per image, in order.

    Raises:
        InvalidInputError: If an image cannot be brought to the model's input.
        DataFileError: If an image file cannot be read.

    Example:
        >>> model = digitrec.DigitClassifier(seed=0, class_names=list("abcdefghij"))
        >>> [answer] = digitrec.classify(model, [torch.zeros(40, 30)])
        >>> answer.label in "abcdefghij", len(answer.probabilities)
        (True, 10)
    """
    checked = _single_label(check_model(model), "classify")
    batch = model_batch(checked, images, prepare)
    size = check_positive_int(batch_size, "batch_size")
    target = model_device(checked, device)
    logits, unusual = _logits_and_unusual(checked, batch, target, size)
    probabilities = checked.probabilities(logits)
    names = checked.class_names or tuple(str(index) for index in range(checked.num_classes))
    confidence, indices = probabilities.max(dim=1)
    flags: list[bool | None] = [None] * len(indices) if unusual is None else unusual.tolist()
    return [
        Prediction(
            class_index=index,
            label=names[index],
            probabilities=tuple(row),
            confidence=top,
            out_of_distribution=flag,
        )
        for index, top, row, flag in zip(
            indices.tolist(), confidence.tolist(), probabilities.tolist(), flags, strict=True
        )
    ]


def _logits_and_unusual(
    model: DigitClassifier, batch: torch.Tensor, device: torch.device, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The logits, and whether each image scores above the model's fitted threshold.

    The flags are ``None`` when the model has no out-of-distribution statistics.
    With them, one forward pass gives both where it can.
    """
    detector = getattr(model, "ood", None)
    if detector is None:
        return logits_in_batches(model, batch, device, batch_size), None
    from .models.ood import ood_scores, scores_and_logits

    both = scores_and_logits(model, batch, device, batch_size)
    if both is None:
        logits = logits_in_batches(model, batch, device, batch_size)
        scores = ood_scores(model, batch, device=device, batch_size=batch_size)
    else:
        scores, logits = both
    unusual: torch.Tensor = scores > float(detector.threshold)
    return logits, unusual

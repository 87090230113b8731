"""The notebook's summary: how many images a model labels correctly."""

from __future__ import annotations

from dataclasses import dataclass

from .._checks import check_positive_int
from .._device import DeviceLike
from .._model_inputs import model_batch
from .._runtime import model_device
from ..data import ImageDataset
from ..models import DigitClassifier
from ..models._batches import logits_in_batches
from ..models._validate import check_labels, check_model

__all__ = ["AccuracyResult", "evaluate_accuracy"]


@dataclass(frozen=True)
class AccuracyResult:
    """The outcome of :func:`evaluate_accuracy`.

    Attributes:
        total: Number of images tested.
        correct: Number whose predicted label equals the actual one.

    Example:
        >>> result = digitrec.AccuracyResult(total=10000, correct=9750)
        >>> result.accuracy
        0.975
        >>> print(result)
        Number of images tested: 10000
        Number correct: 9750
        Model accuracy: 97.50%
    """

    total: int
    correct: int

    @property
    def accuracy(self) -> float:
        """``correct / total`` as a fraction in ``[0, 1]`` (0.0 when nothing was tested)."""
        return self.correct / self.total if self.total else 0.0

    def __str__(self) -> str:
        return (
            f"Number of images tested: {self.total}\n"
            f"Number correct: {self.correct}\n"
            f"Model accuracy: {100 * self.accuracy:.2f}%"
        )


def evaluate_accuracy(
    model: DigitClassifier,
    data: ImageDataset,
    *,
    device: DeviceLike | None = None,
    batch_size: int = 1024,
    prepare: bool | None = None,
) -> AccuracyResult:
    """Count how many images of ``data`` the model labels correctly.

    Args:
        model: The classifier; it is moved to ``device`` if one is given, and its
            train/eval mode is restored afterwards.
        data: Labelled images that fit the model.
        device: Where to compute: ``"cpu"``, ``"cuda"``, ``"mps"`` or ``"auto"``;
            ``None`` (the default) computes where the model's weights are.
        batch_size: Images per forward pass.
        prepare: Bring images of another size than the model's input to it as the
            model's metadata says (see :func:`~digitrec.predict_proba`); ``None``
            prepares only images that do not fit, ``False`` refuses them.

    Returns:
        The number tested and the number correct; ``str()`` gives the notebook's summary.

    Raises:
        InvalidTypeError: If ``data`` is not an :class:`~digitrec.ImageDataset`.
        InvalidInputError: If the data is empty or does not fit the model.

    Example:
        >>> test = digitrec.load_mnist("test")[:100]
        >>> result = digitrec.evaluate_accuracy(digitrec.DigitClassifier(seed=0), test)
        >>> result.total, 0.0 <= result.accuracy <= 1.0
        (100, True)
    """
    model = check_model(model)
    data = check_labels(model, data)
    images = model_batch(model, data, prepare, "data images")
    size = check_positive_int(batch_size, "batch_size")
    logits = logits_in_batches(model, images, model_device(model, device), size)
    correct = int((logits.argmax(dim=1) == data.labels).sum())
    return AccuracyResult(total=len(data), correct=correct)

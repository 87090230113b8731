"""Temperature scaling: calibrated probabilities without changing any prediction."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._checks import check_positive_int
from .._device import DeviceLike
from .._runtime import model_device
from ..data import ImageDataset
from ..errors import InvalidInputError
from ..models import DigitClassifier
from ..models._batches import logits_in_batches
from ..models._validate import check_labelled_data, check_model

__all__ = ["calibrate"]


def calibrate(
    model: DigitClassifier,
    val: ImageDataset,
    *,
    device: DeviceLike | None = None,
    batch_size: int = 1024,
) -> float:
    """Fit the model's softmax temperature on held-out data (temperature scaling).

    Finds the temperature ``T > 0`` that minimises the negative log-likelihood of
    ``softmax(logits / T)`` on ``val`` (Guo et al., 2017), stores it in the model,
    and returns it. Predicted labels do not change; probabilities become
    calibrated, which :func:`predict_proba`, :func:`evaluate` and abstention use.
    Use data the model was not trained on, such as a validation split.

    Args:
        model: The trained classifier; its ``temperature`` buffer is set.
        val: Labelled held-out images that fit the model.
        device: Where to compute the logits; ``None``: where the model is.
        batch_size: Images per forward pass.

    Returns:
        The fitted temperature (above 1 when the model was over-confident).

    Raises:
        InvalidTypeError: If ``val`` is not an :class:`~digitrec.ImageDataset`.
        InvalidInputError: If ``val`` is empty or does not fit the model.

    Example:
        >>> model = digitrec.DigitClassifier(seed=0)
        >>> _ = digitrec.Trainer(model, epochs=1, progress=False).fit(
        ...     digitrec.load_mnist("train")[:5000])
        >>> temperature = digitrec.calibrate(model, digitrec.load_mnist("test")[:1000])
        >>> 0.2 < temperature < 5 and float(model.temperature) == temperature
        True
    """
    model = check_model(model)
    val = check_labelled_data(model, val, "val")
    size = check_positive_int(batch_size, "batch_size")
    logits = logits_in_batches(model, val.images, model_device(model, device), size).double()
    labels = val.labels
    # Optimise log T so that T stays positive; NLL is convex in 1/T, so LBFGS converges.
    log_temperature = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [log_temperature], lr=0.5, max_iter=200, tolerance_grad=1e-10, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_temperature.exp(), labels)
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    with torch.enable_grad():
        optimizer.step(closure)  # type: ignore[no-untyped-call]
    temperature = float(log_temperature.detach().exp())
    if not math.isfinite(temperature) or temperature <= 0:
        raise InvalidInputError(f"temperature scaling failed on val: got T = {temperature}")
    model.temperature.fill_(temperature)
    return float(model.temperature)

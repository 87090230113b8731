"""Attributions (:func:`explain`): which pixels made a classifier decide as it did.

Needs the ``explain`` extra (`Captum <https://captum.ai>`_), imported only when
:func:`explain` runs, so ``import digitrec`` works without it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Literal, get_args

import numpy as np
import torch

from . import _images
from ._checks import check_positive_int
from ._device import DeviceLike, resolve_device
from ._runtime import eval_mode_with_gradients, move_to
from .data import ImageDataset
from .errors import InvalidInputError, InvalidTypeError, MissingDependencyError
from .models import DigitClassifier
from .models._validate import check_image_shape, check_model

__all__ = ["ExplainMethod", "explain"]

#: The attribution methods :func:`explain` offers.
ExplainMethod = Literal["integrated_gradients", "saliency", "occlusion"]

_METHODS: tuple[str, ...] = get_args(ExplainMethod)
_DEFAULT_INTERNAL_BATCH_SIZE = 256
# Occlusion slides a window one seventh of the image's side (4x4 on 28x28 MNIST: about
# a stroke's width) with a stride of half that, so every pixel is covered by up to
# four windows and a 28x28 image needs 13x13 = 169 forward passes.
_OCCLUSION_FRACTION = 7


def explain(
    model: DigitClassifier,
    images: Any,
    *,
    target: int | Sequence[int] | torch.Tensor | np.ndarray[Any, Any] | None = None,
    method: ExplainMethod = "integrated_gradients",
    device: DeviceLike | None = None,
    baseline: float | torch.Tensor | None = None,
    n_steps: int = 50,
    internal_batch_size: int = _DEFAULT_INTERNAL_BATCH_SIZE,
    reduce_channels: bool = False,
) -> torch.Tensor:
    """Attribute the model's score for a class to each pixel of each image.

    Attributions explain the target class's *logit* as a function of the pixels on
    the ``[0, 1]`` scale (``uint8`` images are divided by 255 first; the model
    normalizes internally, so the attributions are in units of logit per pixel).
    Positive values push towards the target class, negative values away from it.

    * ``"integrated_gradients"`` (Sundararajan et al., 2017): the gradient averaged
      along the straight path from ``baseline`` to the image, times the difference
      between them, integrated with ``n_steps`` Gauss-Legendre points. Its
      attributions sum to ``logit(image) - logit(baseline)`` (completeness).
    * ``"saliency"`` (Simonyan et al., 2014): the absolute gradient at the image;
      one backward pass, non-negative values, ignores ``baseline`` and ``n_steps``.
    * ``"occlusion"`` (Zeiler and Fergus, 2014): how much the logit drops when a
      square window covering all channels is set to ``baseline``, averaged over
      the windows covering each pixel. The window's side is one seventh of the
      image's (at least 1 pixel; 4x4 on 28x28 images) and it slides by half its
      side (2 pixels on 28x28). Needs no gradients; ignores ``n_steps``.

    The model is evaluated in eval mode (BatchNorm uses its running statistics)
    with gradients enabled, and every module's mode is put back afterwards. No
    parameter gradient is accumulated.

    Args:
        model: The classifier.
        images: One image, a tensor or numpy array of shape ``(H, W)``, ``(C, H, W)``
            or ``(H, W, C)`` (or a PIL image), or a batch of shape ``(N, C, H, W)`` or
            ``(N, H, W, C)`` or an :class:`~digitrec.ImageDataset`; ``uint8`` (0-255)
            or float (0-1) pixels.
        target: The class to explain: one index for all images, one per image,
            or ``None`` for the class the model predicts for each image.
        method: ``"integrated_gradients"``, ``"saliency"`` or ``"occlusion"``.
        device: Where to compute; ``None`` uses the device the model is on.
            The model is moved to any other device given.
        baseline: The "absent" image that integrated gradients starts from and
            occlusion fills windows with: ``None`` for black (all zeros), a pixel
            value in ``[0, 1]`` for a uniform image, or a tensor of one image's
            shape ``(C, H, W)`` or of the batch's shape (``uint8`` or 0-1 float).
        n_steps: Integration points for integrated gradients; more is more exact.
        internal_batch_size: The most inputs in one forward or backward pass,
            so memory stays the same whatever ``n_steps`` and the number of images.
        reduce_channels: Sum the attributions over the channels, giving one map
            per image with a single channel.

    Returns:
        ``float32`` CPU tensor, channels first: ``(N, C, H, W)`` for a batch and
        ``(C, H, W)`` for one image (``C`` is 1 with ``reduce_channels=True``).

    Raises:
        MissingDependencyError: If Captum is not installed.
        InvalidInputError: For images that do not fit the model, a target out of
            range or of the wrong length, an unknown method, a bad baseline or
            non-positive ``n_steps`` / ``internal_batch_size``.
        InvalidTypeError: For a model that is not a DigitClassifier, or arguments
            of unsupported types or dtypes.

    Example:
        >>> model = digitrec.DigitClassifier("mlp", seed=0)
        >>> image, label = digitrec.load_mnist("test")[0]
        >>> digitrec.explain(model, image).shape
        torch.Size([1, 28, 28])
        >>> batch = digitrec.load_mnist("test").images[:4]
        >>> digitrec.explain(model, batch, target=label, method="occlusion").shape
        torch.Size([4, 1, 28, 28])
        >>> digitrec.explain(model, batch, method="saliency", reduce_channels=True).shape
        torch.Size([4, 1, 28, 28])
    """
    model = check_model(model)
    if method not in _METHODS:
        raise InvalidInputError(
            f"method must be one of {', '.join(repr(m) for m in _METHODS)}, got {method!r}"
        )
    single, pixels = _as_pixels(model, images)
    n_steps = check_positive_int(n_steps, "n_steps")
    internal_batch_size = check_positive_int(internal_batch_size, "internal_batch_size")
    if not isinstance(reduce_channels, bool):
        raise InvalidTypeError(
            f"reduce_channels must be a bool, got {type(reduce_channels).__name__}"
        )
    base = _as_baseline(baseline, pixels.shape)
    targets = _as_targets(target, pixels.shape[0], model.num_classes, single)
    where = _model_device(model) if device is None else resolve_device(device)
    attr = _captum()
    move_to(model, where)
    chunks = []
    with eval_mode_with_gradients(model):
        if targets is None:
            targets = _predicted(model, pixels, where, internal_batch_size)
        for start in range(0, pixels.shape[0], internal_batch_size):
            part = slice(start, start + internal_batch_size)
            inputs = pixels[part].to(where)
            chunk = _attribute(
                attr,
                model,
                method,
                inputs,
                base[part].to(where) if base.shape[0] > 1 else base.to(where),
                targets[part].tolist(),
                n_steps,
                internal_batch_size,
            )
            chunks.append(chunk.detach().float().cpu())
    result = torch.cat(chunks) if chunks else torch.empty(pixels.shape, dtype=torch.float32)
    if reduce_channels:
        result = result.sum(dim=1, keepdim=True)
    return result[0] if single else result


def _captum() -> ModuleType:
    try:
        return importlib.import_module("captum.attr")
    except ImportError as error:
        raise MissingDependencyError(
            'digitrec.explain needs Captum: pip install "digitrec[explain]"'
        ) from error


def _as_pixels(model: DigitClassifier, images: Any) -> tuple[bool, torch.Tensor]:
    """Return whether ``images`` is one image, and the float32 0-1 pixels as a batch."""
    if isinstance(images, ImageDataset):
        single, batch = False, images.images
    elif isinstance(images, (torch.Tensor, np.ndarray)) and images.ndim == 4:
        single, batch = False, _images.as_image_batch(images)
    else:
        single, batch = True, _images.as_single_image(images, model.input_shape[0])
    check_image_shape(model, tuple(batch.shape[1:]), "image" if single else "images")
    return single, _to_float(batch)


def _to_float(pixels: torch.Tensor) -> torch.Tensor:
    # A fresh tensor: the caller's may be an inference tensor, which autograd refuses.
    if pixels.dtype == torch.uint8:
        return pixels.to(torch.float32) / 255.0
    return pixels.to(torch.float32, copy=True)


def _as_baseline(baseline: float | torch.Tensor | None, shape: torch.Size) -> torch.Tensor:
    """Return the baseline as float32 pixels of shape (1, C, H, W) or (N, C, H, W)."""
    if baseline is None:
        return torch.zeros(1, *shape[1:])
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        if not 0.0 <= baseline <= 1.0:
            raise InvalidInputError(f"a number as baseline must lie in [0, 1], got {baseline!r}")
        return torch.full((1, *shape[1:]), float(baseline))
    if not isinstance(baseline, torch.Tensor):
        raise InvalidTypeError(
            f"baseline must be None, a number in [0, 1] or a torch.Tensor, "
            f"got {type(baseline).__name__}"
        )
    if baseline.dim() == 4:
        pixels = _images.as_image_batch(baseline, "baseline")
    else:
        pixels = _images.as_single_image(baseline, int(shape[1]), "baseline")
    if tuple(pixels.shape[1:]) != tuple(shape[1:]) or pixels.shape[0] not in (1, shape[0]):
        raise InvalidInputError(
            f"baseline must have one image's shape {tuple(shape[1:])} or the batch's "
            f"{tuple(shape)}, got {tuple(baseline.shape)}"
        )
    return _to_float(pixels)


def _as_targets(target: object, count: int, classes: int, single: bool) -> torch.Tensor | None:
    """Return one int64 class index per image, or ``None`` to use the predictions."""
    if target is None:
        return None
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        targets = torch.full((count,), int(target), dtype=torch.int64)
    elif single:
        raise InvalidTypeError(f"target for one image must be an int, got {type(target).__name__}")
    elif isinstance(target, (torch.Tensor, np.ndarray, Sequence)) and not isinstance(
        target, (str, bytes)
    ):
        targets = _int_tensor(target)
        if tuple(targets.shape) != (count,):
            raise InvalidInputError(
                f"target must hold one class per image: expected shape ({count},), "
                f"got {tuple(targets.shape)}"
            )
    else:
        raise InvalidTypeError(
            f"target must be None, an int or a sequence of ints, got {type(target).__name__}"
        )
    low, high = (int(targets.min()), int(targets.max())) if targets.numel() else (0, 0)
    if low < 0 or high >= classes:
        bad = low if low < 0 else high
        raise InvalidInputError(f"target must be a class index from 0 to {classes - 1}, got {bad}")
    return targets


def _int_tensor(values: torch.Tensor | np.ndarray[Any, Any] | Sequence[Any]) -> torch.Tensor:
    try:
        tensor = torch.as_tensor(np.asarray(values) if isinstance(values, Sequence) else values)
    except (TypeError, ValueError, RuntimeError) as error:
        raise InvalidTypeError(f"target must hold integers, got {values!r}") from error
    if tensor.dtype == torch.bool or tensor.is_floating_point() or tensor.is_complex():
        raise InvalidTypeError(f"target must hold integers, got dtype {tensor.dtype}")
    return tensor.detach().to("cpu", torch.int64)


def _model_device(model: DigitClassifier) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _predicted(
    model: DigitClassifier, pixels: torch.Tensor, device: torch.device, batch_size: int
) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat(
            [
                model(pixels[start : start + batch_size].to(device)).argmax(dim=1).cpu()
                for start in range(0, pixels.shape[0], batch_size)
            ]
            or [torch.empty(0, dtype=torch.int64)]
        )


def _attribute(
    attr: ModuleType,
    model: DigitClassifier,
    method: str,
    inputs: torch.Tensor,
    baseline: torch.Tensor,
    targets: list[int],
    n_steps: int,
    internal_batch_size: int,
) -> torch.Tensor:
    result: torch.Tensor
    if method == "integrated_gradients":
        result = attr.IntegratedGradients(model).attribute(
            inputs,
            baselines=baseline,
            target=targets,
            n_steps=n_steps,
            method="gausslegendre",
            internal_batch_size=internal_batch_size,
        )
    elif method == "saliency":
        result = attr.Saliency(model).attribute(inputs.requires_grad_(), target=targets, abs=True)
    else:
        channels, height, width = inputs.shape[1:]
        window = (max(1, height // _OCCLUSION_FRACTION), max(1, width // _OCCLUSION_FRACTION))
        stride = (max(1, window[0] // 2), max(1, window[1] // 2))
        result = attr.Occlusion(model).attribute(
            inputs,
            sliding_window_shapes=(channels, *window),
            strides=(channels, *stride),
            baselines=baseline,
            target=targets,
            perturbations_per_eval=max(1, internal_batch_size // inputs.shape[0]),
        )
    return result

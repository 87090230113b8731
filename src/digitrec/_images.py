"""Turn the image arrays users hold into the tensors digitrec computes with.

Users hand over numpy arrays, torch tensors or PIL images in several layouts.
These helpers accept each documented layout, check dtype and value range once,
and return a contiguous ``(N, C, H, W)`` tensor that is either ``uint8`` (0-255)
or ``float32`` (0-1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .errors import InvalidInputError, InvalidTypeError

_CHANNELS = (1, 3)


def _to_tensor(array: Any, what: str) -> torch.Tensor:
    if isinstance(array, torch.Tensor):
        return array.detach()
    if isinstance(array, np.ndarray):
        if array.dtype == object:
            raise InvalidTypeError(f"{what} must hold numbers, got a numpy array of dtype object")
        # A private, native-endian copy: torch cannot view big-endian or read-only memory.
        return torch.from_numpy(np.array(array, dtype=array.dtype.newbyteorder("="), copy=True))
    if _is_pil_image(array):
        return torch.from_numpy(np.array(array, copy=True))
    raise InvalidTypeError(
        f"{what} must be a torch.Tensor or numpy.ndarray, got {type(array).__name__}"
    )


def _is_pil_image(obj: object) -> bool:
    return any(
        cls.__module__.startswith("PIL.") and cls.__name__ == "Image" for cls in type(obj).__mro__
    )


def _check_pixels(images: torch.Tensor, what: str) -> torch.Tensor:
    """Return uint8 unchanged, floats as float32 after a range check; refuse other dtypes."""
    if images.dtype == torch.uint8:
        return images
    if not images.is_floating_point():
        raise InvalidTypeError(
            f"{what} must be uint8 (0-255) or floating point (0-1), got {images.dtype}; "
            "convert integer pixels with .astype(numpy.uint8) or .to(torch.uint8)"
        )
    images = images.to(torch.float32)
    if images.numel():
        if not bool(torch.isfinite(images).all()):
            raise InvalidInputError(f"{what} must be finite, got NaN or infinite values")
        low, high = float(images.min()), float(images.max())
        if low < 0.0 or high > 1.0:
            raise InvalidInputError(
                f"float {what} must lie in [0, 1], got values in [{low:.4g}, {high:.4g}]; "
                "divide 0-255 pixels by 255 or pass them as uint8"
            )
    return images


def as_image_batch(images: Any, what: str = "images") -> torch.Tensor:
    """Return a batch as a contiguous (N, C, H, W) tensor of uint8 or float32 pixels.

    Accepts (N, H, W), (N, C, H, W) and (N, H, W, C) with C in {1, 3}.
    """
    tensor = _to_tensor(images, what)
    if tensor.dim() == 3:
        tensor = tensor.unsqueeze(1)
    elif tensor.dim() == 4:
        if tensor.shape[1] not in _CHANNELS and tensor.shape[3] in _CHANNELS:
            tensor = tensor.permute(0, 3, 1, 2)
        elif tensor.shape[1] not in _CHANNELS:
            raise InvalidInputError(
                f"{what} must have 1 or 3 channels in (N, C, H, W) or (N, H, W, C) layout, "
                f"got shape {tuple(tensor.shape)}"
            )
    else:
        raise InvalidInputError(
            f"{what} must have shape (N, H, W), (N, C, H, W) or (N, H, W, C), "
            f"got {tensor.dim()} dimensions with shape {tuple(tensor.shape)}"
        )
    return _check_pixels(tensor, what).contiguous()


def as_single_image(image: Any, channels: int, what: str = "image") -> torch.Tensor:
    """Return one image as a (1, C, H, W) tensor of uint8 or float32 pixels.

    Accepts (H, W), (C, H, W) and (H, W, C) with C in {1, 3}, and PIL images,
    which are converted to grayscale or RGB to match ``channels``.
    """
    if _is_pil_image(image):
        image = image.convert("L" if channels == 1 else "RGB")
    tensor = _to_tensor(image, what)
    if tensor.dim() == 2:
        tensor = tensor.unsqueeze(0)
    elif tensor.dim() == 3:
        if tensor.shape[0] not in _CHANNELS and tensor.shape[2] in _CHANNELS:
            tensor = tensor.permute(2, 0, 1)
        elif tensor.shape[0] not in _CHANNELS:
            raise InvalidInputError(
                f"{what} must have 1 or 3 channels in (C, H, W) or (H, W, C) layout, "
                f"got shape {tuple(tensor.shape)}"
            )
    else:
        raise InvalidInputError(
            f"{what} must be a single image of shape (H, W), (C, H, W) or (H, W, C), "
            f"got {tensor.dim()} dimensions with shape {tuple(tensor.shape)}; "
            "use predict() for batches"
        )
    return _check_pixels(tensor, what).unsqueeze(0).contiguous()


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Quantize checked float32 pixels in [0, 1] to uint8; uint8 passes through."""
    if images.dtype == torch.uint8:
        return images
    return (images * 255.0).round_().to(torch.uint8)

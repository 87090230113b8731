"""Turn real-world digit images into what an MNIST-trained model expects, and resize images.

A model trained on MNIST has only ever seen white digits on black, cropped to their ink,
scaled to fit a 20x20 box and centred by centre of mass in 28x28. A photograph of a
digit on paper is none of that, so feeding it in stretched to 28x28 is close to
guessing. :func:`prepare_digits` applies MNIST's own recipe to any digit image, a whole
batch at a time with tensor operations (no per-image Python loop): it detects the
polarity, removes uneven lighting and speckle, crops to the ink, scales with
anti-aliasing and centres by centre of mass. :func:`resize_images` brings a batch of
images of any size to one size, padded or stretched. Both are pure functions of their
input: deterministic, with no state and no side effects.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F

from . import _images
from ._framing import border, frame
from .errors import InvalidInputError, InvalidTypeError

__all__ = ["ResizeMode", "prepare_digits", "resize_images"]

ResizeMode = Literal["pad", "stretch"]

_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as PIL's "L" mode


def prepare_digits(images: Any) -> torch.Tensor:
    """Frame digit images the way MNIST did, so an MNIST-trained model can read them.

    Each image goes through MNIST's recipe: colour becomes luminance; dark ink on
    light paper is inverted (the polarity is read from the strongest local deviations
    from the surroundings: dark ink makes the darkest ones, light ink the brightest);
    the paper's uneven lighting is removed (a quadratic surface fitted to the paper
    estimates it); the paper's noise level, measured on the border, is subtracted and
    the ink level (the 90th percentile of the pixels above Otsu's threshold) is
    stretched to 1; specks are dropped; the digit is cropped to its ink, scaled with
    anti-aliasing (area averaging when shrinking) so its longer side fills 20 pixels,
    and placed in 28x28 with its centre of mass at pixel (14, 14).

    Edge cases:

    * A blank image, or one whose ink differs from the paper by less than 10% of
      the range, gives all zeros.
    * A single dot is kept and centred; enlargement is capped at 4x, so it stays a
      dot instead of becoming a 20x20 blob.
    * Ink touching the border is kept as it is (tight crops touch their frame).
    * Of several separate marks, every mark whose longer side is at least a
      quarter of the largest mark's is kept and framed together (so both strokes
      of an "11", or a detached bar of a "5", stay); smaller specks are dropped.
    * Digits already framed like MNIST (longer side within 5% of 20 pixels) are not
      resampled, only shifted by whole pixels, so MNIST's own images come out
      unchanged.

    Args:
        images: One image, ``(H, W)``, ``(C, H, W)`` or ``(H, W, C)``, or a batch,
            ``(N, H, W)``, ``(N, C, H, W)`` or ``(N, H, W, C)``, of any size, with 1 or
            3 (RGB) channels, ``uint8`` (0-255) or float (0-1) pixels, as a torch
            tensor, numpy array or PIL image. A 3-D input is one image when its
            first or last dimension is 1 or 3, otherwise a batch of gray images;
            pass ``(N, 1, H, W)`` to say "batch" without doubt.

    Returns:
        ``float32`` pixels in ``[0, 1]``, white ink on black: ``(N, 1, 28, 28)`` for a
        batch, ``(1, 28, 28)`` for one image. The same input always gives the same
        output.

    Raises:
        InvalidTypeError: If the pixels are neither ``uint8`` nor floating point, or
            ``images`` is not an array, tensor or PIL image.
        InvalidInputError: For NaN or infinite pixels, floats outside ``[0, 1]``, a
            number of dimensions other than 2, 3 or 4, channels other than 1 or 3, or
            an empty height or width.

    Example:
        >>> from digitrec.preprocessing import prepare_digits
        >>> photo = torch.full((60, 90, 3), 230, dtype=torch.uint8)  # light paper
        >>> photo[10:50, 40:46] = 20  # a dark "1"
        >>> digit = prepare_digits(photo)
        >>> digit.shape, digit.dtype, round(digit.max().item(), 2)
        (torch.Size([1, 28, 28]), torch.float32, 1.0)
        >>> prepare_digits(torch.zeros(2, 40, 40)).abs().sum().item()  # blank stays blank
        0.0
    """
    batch, single = _as_batch(images)
    if torch.is_inference_mode_enabled():
        framed = frame(_luminance(batch))
    else:
        # Inference mode skips autograd's bookkeeping on the ~200 small ops of a call
        # (a quarter of the time of one image); the copy is an ordinary tensor again.
        with torch.inference_mode():
            framed = frame(_luminance(batch))
        framed = framed.clone()
    return framed[0] if single else framed


def resize_images(
    images: Any, size: int | tuple[int, int], *, mode: ResizeMode = "pad"
) -> torch.Tensor:
    """Resize a batch of images to one size, keeping or ignoring the aspect ratio.

    Shrinking is anti-aliased (bilinear with a widened filter, close to area
    averaging), so fine detail averages out instead of aliasing.

    Args:
        images: A batch, ``(N, C, H, W)``, ``(N, H, W)`` or ``(N, H, W, C)`` with 1 or 3
            channels, ``uint8`` (0-255) or float (0-1), as a torch tensor or numpy array.
        size: The output size: ``S`` for ``S x S`` or ``(height, width)``.
        mode: ``"pad"`` scales each image to fit inside ``size`` keeping its aspect
            ratio and fills the rest with the median of the image's border pixels
            (per channel), so the background continues: black for MNIST and X-rays,
            the paper's colour for photos. ``"stretch"`` scales height and width
            separately to fill ``size``.

    Returns:
        ``float32`` tensor in ``[0, 1]`` of shape ``(N, C, height, width)``.

    Raises:
        InvalidInputError: For a size that is not one or two positive integers, an
            unknown mode, or images as :func:`prepare_digits` refuses them.
        InvalidTypeError: For pixels that are neither ``uint8`` nor floating point.

    Example:
        >>> from digitrec.preprocessing import resize_images
        >>> images = torch.zeros(2, 1, 50, 100, dtype=torch.uint8)
        >>> resize_images(images, 28).shape
        torch.Size([2, 1, 28, 28])
        >>> resize_images(images, (32, 64), mode="stretch").shape
        torch.Size([2, 1, 32, 64])
    """
    height, width = _check_size(size)
    if mode not in ("pad", "stretch"):
        raise InvalidInputError(f"mode must be 'pad' or 'stretch', got {mode!r}")
    batch = _as_float(_images.as_image_batch(images))
    count, channels, old_height, old_width = batch.shape
    _check_not_empty(old_height, old_width)
    if count == 0:
        return torch.zeros(0, channels, height, width)
    if mode == "stretch":
        return _resample(batch, height, width)
    scale = min(height / old_height, width / old_width)
    new_height = min(height, max(1, round(old_height * scale)))
    new_width = min(width, max(1, round(old_width * scale)))
    fill = border(batch.flatten(0, 1), 1).median(dim=1).values.view(count, channels, 1, 1)
    out = fill.expand(count, channels, height, width).clone()
    top, left = (height - new_height) // 2, (width - new_width) // 2
    out[:, :, top : top + new_height, left : left + new_width] = _resample(
        batch, new_height, new_width
    )
    return out


def _check_size(size: object) -> tuple[int, int]:
    sizes = (size, size) if isinstance(size, int) else size
    if (
        not isinstance(sizes, (tuple, list))
        or len(sizes) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes)
    ):
        raise InvalidInputError(
            f"size must be a positive integer or a (height, width) pair of them, got {size!r}"
        )
    return int(sizes[0]), int(sizes[1])


def _check_not_empty(height: int, width: int) -> None:
    if height == 0 or width == 0:
        raise InvalidInputError(
            f"images must have a height and width of at least 1, got {height}x{width}"
        )


def _resample(batch: torch.Tensor, height: int, width: int) -> torch.Tensor:
    if tuple(batch.shape[-2:]) == (height, width):
        return batch.clone()
    resized = F.interpolate(
        batch, size=(height, width), mode="bilinear", align_corners=False, antialias=True
    )
    return resized.clamp_(0.0, 1.0)


def _as_batch(images: Any) -> tuple[torch.Tensor, bool]:
    """Return (N, C, H, W) uint8 or float32 pixels, maybe a view, and whether it is one image."""
    if _images._is_pil_image(images):
        return _images.as_single_image(images, channels=1), True
    ndim = getattr(images, "ndim", None)
    if not isinstance(images, (torch.Tensor,)) and ndim is None:
        raise InvalidTypeError(
            "images must be a torch.Tensor, numpy.ndarray or PIL image, "
            f"got {type(images).__name__}"
        )
    shape = tuple(images.shape)
    if ndim not in (2, 3, 4):
        raise InvalidInputError(
            "images must be one image, (H, W), (C, H, W) or (H, W, C), or a batch, "
            f"(N, H, W), (N, C, H, W) or (N, H, W, C), got {ndim} dimensions with "
            f"shape {shape}"
        )
    single = ndim == 2 or (ndim == 3 and (shape[0] in (1, 3) or shape[2] in (1, 3)))
    if single:
        batch = _images.as_single_image(images, channels=1)
    elif ndim == 4 and shape[1] not in (1, 3) and shape[3] in (1, 3):
        # (N, H, W, C) read in place: _luminance takes any strides.
        tensor = _images._check_pixels(_images._to_tensor(images, "images"), "images")
        batch = tensor.permute(0, 3, 1, 2)
    else:
        batch = _images.as_image_batch(images)
    _check_not_empty(batch.shape[2], batch.shape[3])
    return batch, single


def _as_float(batch: torch.Tensor) -> torch.Tensor:
    if batch.dtype == torch.uint8:
        return batch.to(torch.float32).mul_(1.0 / 255.0)
    return batch.to(torch.float32)


def _luminance(batch: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) pixels of any strides to new (N, H, W) float32 luminance in [0, 1].

    Channel by channel, straight from the input's memory: an RGB batch in (N, H, W, C)
    layout is read once, not first copied to (N, C, H, W) and to float.
    """
    scale = 1.0 / 255.0 if batch.dtype == torch.uint8 else 1.0
    channels = batch.unbind(1)
    gray = channels[0].to(torch.float32, memory_format=torch.contiguous_format, copy=True)
    if len(channels) == 1:
        return gray.mul_(scale) if scale != 1.0 else gray
    gray.mul_(_LUMA[0] * scale)
    gray.add_(channels[1], alpha=_LUMA[1] * scale).add_(channels[2], alpha=_LUMA[2] * scale)
    return gray.clamp_(0.0, 1.0)

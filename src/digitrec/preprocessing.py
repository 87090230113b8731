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

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F

from . import _images
from .errors import InvalidInputError, InvalidTypeError

__all__ = ["ResizeMode", "prepare_digits", "resize_images"]

ResizeMode = Literal["pad", "stretch"]

#: MNIST's frame: 28x28 pixels, the digit fitted to a 20x20 box, its centre of mass at
#: pixel (14, 14) (pixel centres at integer coordinates).
_FRAME = 28
_BOX = 20
_CENTRE = 14.0
#: Longest side of the coarse copy used for polarity, background and marks.
_WORK = 32
#: Longest side of the coarse copy the separate marks are found on.
_MARKS_WORK = 24
#: Longest side of the coarser copy the lighting is estimated on.
_BACKGROUND_WORK = 16
#: Rounds of the lighting fit, and how far above the last fit a cell may lie and
#: still count as paper (about zero: the fit settles on the paper's lower envelope).
_BACKGROUND_ROUNDS = 8
_BACKGROUND_TOLERANCE = 0.002
#: The border decides the polarity when its median lies this far from midway
#: between the darkest and brightest pixels (as a share of that range).
_POLARITY_MARGIN = 0.15
#: Pixels of a prepared image count as ink (for the bounding box) at this level.
_BOX_LEVEL = 0.3
#: The ink must stand out from the paper by this much (of the 0-1 range), or the
#: image counts as blank.
_MIN_CONTRAST = 0.1
#: A separate mark is kept when its longer side is at least this share of the
#: largest mark's (both measured after a one-cell dilation on the coarse copy).
_MIN_MARK = 0.25
#: Digits are enlarged at most this much, so a dot stays a dot.
_MAX_ZOOM = 4.0
#: A digit whose box is within this share of 20 pixels is not resampled, only shifted
#: by whole pixels, so MNIST-framed digits pass through unchanged.
_SNAP = 0.05
#: The ink level is this quantile of the pixels above Otsu's threshold; it becomes 1.
_INK_QUANTILE = 0.9
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
    framed = _frame(_luminance(batch))
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
    fill = _border(batch.flatten(0, 1), 1).median(dim=1).values.view(count, channels, 1, 1)
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
    """Return (N, C, H, W) uint8 or float32 pixels and whether the input was one image."""
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
    else:
        batch = _images.as_image_batch(images)
    _check_not_empty(batch.shape[2], batch.shape[3])
    return batch, single


def _as_float(batch: torch.Tensor) -> torch.Tensor:
    if batch.dtype == torch.uint8:
        return batch.to(torch.float32).mul_(1.0 / 255.0)
    return batch.to(torch.float32)


def _luminance(batch: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) pixels to (N, H, W) float32 luminance in [0, 1]."""
    pixels = batch.to(torch.float32)
    scale = 1.0 / 255.0 if batch.dtype == torch.uint8 else 1.0
    if pixels.shape[1] == 1:
        return pixels[:, 0].mul_(scale) if scale != 1.0 else pixels[:, 0].contiguous()
    red, green, blue = pixels.unbind(1)
    gray = red.mul(_LUMA[0] * scale)
    gray.add_(green, alpha=_LUMA[1] * scale).add_(blue, alpha=_LUMA[2] * scale)
    return gray.clamp_(0.0, 1.0)


def _work_size(height: int, width: int, longest: int = _WORK) -> tuple[int, int]:
    """A coarse copy's size: at most ``longest`` on the longer side, never enlarged."""
    scale = min(1.0, longest / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _odd(value: float) -> int:
    return max(3, int(value) // 2 * 2 + 1)


def _as_channels(images: torch.Tensor) -> torch.Tensor:
    """(N, 1, h, w) as (1, N, h, w) channels-last, for fast pooling.

    torch's CPU pooling is several times faster over many channels in that layout
    than over a batch of one-channel images.
    """
    count, _, height, width = images.shape
    return images.reshape(1, count, height, width).contiguous(memory_format=torch.channels_last)


def _as_batch_of_one(images: torch.Tensor) -> torch.Tensor:
    _, count, height, width = images.shape
    return images.contiguous().view(count, 1, height, width)


def _box_mean(images: torch.Tensor, kernel: int) -> torch.Tensor:
    pooled = F.avg_pool2d(_as_channels(images), kernel, 1, kernel // 2, count_include_pad=False)
    return _as_batch_of_one(pooled)


def _max_pool(images: torch.Tensor, kernel: int) -> torch.Tensor:
    channels = _as_channels(images)
    pad = kernel // 2
    pooled = F.max_pool2d(channels, (kernel, 1), 1, (pad, 0))
    return _as_batch_of_one(F.max_pool2d(pooled, (1, kernel), 1, (0, pad)))


def _min_pool(images: torch.Tensor, kernel: int) -> torch.Tensor:
    return -_max_pool(-images, kernel)


def _border(images: torch.Tensor, width: int) -> torch.Tensor:
    """The pixels of the outer ring, ``width`` pixels wide, as (N, K)."""
    count = images.shape[0]
    sides = (
        images[:, :width],
        images[:, -width:],
        images[:, :, :width],
        images[:, :, -width:],
    )
    return torch.cat([side.reshape(count, -1) for side in sides], dim=1)


def _ink_is_dark(coarse: torch.Tensor) -> torch.Tensor:
    """Whether each coarse (N, 1, h, w) image shows dark ink on light paper.

    The border is mostly paper: where the median of the border pixels lies clearly
    nearer the brightest than the darkest pixels, the paper is light. Where the
    border cannot tell (a lighting gradient across it, ink along it), ink is what
    deviates most from its surroundings: with a window half the image wide, the
    gradient cancels out and the strokes deviate more than the paper between them.
    """
    flat = coarse.flatten(1)
    low, high = flat.amin(dim=1), flat.amax(dim=1)
    border = _border(coarse[:, 0], 1).median(dim=1).values
    position = (border - low) / (high - low).clamp_min(1e-6)
    kernel = _odd(max(coarse.shape[-2:]) / 2)
    deviation = (coarse - _box_mean(coarse, kernel)).flatten(1)
    deviates_dark = -deviation.amin(dim=1) > deviation.amax(dim=1)
    clear = (position - 0.5).abs() > _POLARITY_MARGIN
    return torch.where(clear, position > 0.5, deviates_dark)


def _background(coarse: torch.Tensor) -> torch.Tensor:
    """Estimate the lighting under bright ink on a coarse (N, 1, h, w) copy.

    A quadratic surface (a gradient plus a vignette) is fitted by least squares to
    an even coarser copy, a few times over, each time to the cells that lie on or
    below the previous fit: bright ink drops out and the paper remains.
    """
    small = F.adaptive_avg_pool2d(
        coarse, _work_size(coarse.shape[-2], coarse.shape[-1], _BACKGROUND_WORK)
    )
    count, _, height, width = small.shape
    basis = _quadratic_basis(height, width)
    values = small.reshape(count, -1, 1).to(torch.float64)
    weights = torch.ones(count, height * width, 1, dtype=torch.float64)
    ridge = 1e-6 * torch.eye(basis.shape[1], dtype=torch.float64)
    for _ in range(_BACKGROUND_ROUNDS):
        weighted = basis.T * weights.transpose(1, 2)
        coefficients = torch.linalg.solve(weighted @ basis + ridge, weighted @ values)
        fitted = basis @ coefficients
        weights = (values - fitted <= _BACKGROUND_TOLERANCE).to(torch.float64)
    return _quadratic(coefficients, *coarse.shape[-2:]).to(torch.float32)


def _quadratic_basis(height: int, width: int) -> torch.Tensor:
    """(height * width, 6): 1, x, y, x², xy, y² at the pixel centres, scaled to [-1, 1]."""
    ys = (torch.arange(height, dtype=torch.float64) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, dtype=torch.float64) + 0.5) / width * 2 - 1
    y, x = (grid.flatten() for grid in torch.meshgrid(ys, xs, indexing="ij"))
    return torch.stack((torch.ones_like(x), x, y, x * x, x * y, y * y), dim=1)


def _quadratic(coefficients: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Evaluate (N, 6, 1) coefficients on a height x width grid: (N, 1, height, width)."""
    surface = _quadratic_basis(height, width) @ coefficients
    return surface.view(-1, 1, height, width)


def _otsu_and_ink_level(ink: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: Otsu's threshold and the ink level (a quantile above it), both (N,)."""
    count = ink.shape[0]
    levels = 256
    codes = (ink.reshape(count, -1).clamp(0.0, 1.0) * (levels - 1)).round_().to(torch.int64)
    codes += torch.arange(count).unsqueeze(1) * levels
    hist = torch.bincount(codes.flatten(), minlength=count * levels).view(count, levels)
    hist = hist.to(torch.float64)
    value = torch.arange(levels, dtype=torch.float64) / (levels - 1)
    share = hist / hist.sum(dim=1, keepdim=True)
    below = share.cumsum(dim=1)
    mean_below = (share * value).cumsum(dim=1)
    total_mean = mean_below[:, -1:]
    between = (total_mean * below - mean_below) ** 2 / (below * (1 - below)).clamp_min(1e-12)
    split = between.argmax(dim=1, keepdim=True)
    above = torch.where(torch.arange(levels) > split, hist, torch.zeros_like(hist))
    cumulative = above.cumsum(dim=1)
    target = cumulative[:, -1:] * _INK_QUANTILE
    level = torch.searchsorted(cumulative, target).clamp_(max=levels - 1)
    threshold = (split.squeeze(1).to(torch.float32) + 0.5) / (levels - 1)
    return threshold, level.squeeze(1).to(torch.float32) / (levels - 1)


def _max3(images: torch.Tensor) -> torch.Tensor:
    """The 3x3 maximum of (N, h, w), padding with -1 (faster than max_pool2d on CPU)."""
    padded = F.pad(images, (1, 1, 1, 1), value=-1.0)
    rows = torch.maximum(torch.maximum(padded[:, :-2], padded[:, 1:-1]), padded[:, 2:])
    return torch.maximum(torch.maximum(rows[:, :, :-2], rows[:, :, 1:-1]), rows[:, :, 2:])


def _label_marks(mask: torch.Tensor) -> torch.Tensor:
    """Label the 8-connected marks of a (N, h, w) boolean mask; -1 where no mark.

    Each mark gets the largest flat index of its pixels: labels spread to their
    neighbours with a 3x3 maximum and jump along the labels they point to, a few
    batched rounds in all instead of a loop over images or marks.
    """
    count, height, width = mask.shape
    flat = torch.arange(height * width, dtype=torch.float32).view(1, height, width)
    none = torch.tensor(-1.0)
    labels = torch.where(mask, flat, none)
    for _ in range(height * width):
        spread = torch.where(mask, _max3(labels), none).view(count, -1)
        jumped = spread.gather(1, spread.clamp(min=0).to(torch.int64))
        jumped = torch.where(mask, torch.maximum(jumped, spread).view_as(labels), none)
        if torch.equal(jumped, labels):
            break
        labels = jumped
    return labels


def _keep_marks(coarse: torch.Tensor) -> torch.Tensor:
    """A (N, 1, h, w) 0/1 mask of the marks of a coarse clean copy that are large enough.

    A mark stays when its longer side is at least a quarter of the largest mark's,
    so specks go while a detached bar or the second stroke of an "11" stays.
    """
    coarse = F.adaptive_avg_pool2d(
        coarse, _work_size(coarse.shape[-2], coarse.shape[-1], _MARKS_WORK)
    )
    count, _, height, width = coarse.shape
    # Dilated, so that a stroke thinned out by the averaging stays one mark.
    mask = _max_pool((coarse > 0.2).to(torch.float32), 3)[:, 0] > 0
    labels = _label_marks(mask).view(count, -1)
    index = labels.clamp(min=0).to(torch.int64)
    ys = torch.arange(height).repeat_interleave(width).expand(count, -1)
    xs = torch.arange(width).repeat(height).expand(count, -1)
    extents = []
    for coordinate in (ys, xs):
        low = torch.full_like(index, height + width).scatter_reduce(
            1, index, torch.where(labels >= 0, coordinate, height + width), "amin"
        )
        high = torch.full_like(index, -1).scatter_reduce(
            1, index, torch.where(labels >= 0, coordinate, -1), "amax"
        )
        extents.append(high - low + 1)
    extent = torch.maximum(*extents).clamp_(min=0).to(torch.float32)
    large = extent >= _MIN_MARK * extent.amax(dim=1, keepdim=True)
    keep = large.gather(1, index) & (labels >= 0)
    return keep.view(count, 1, height, width).to(torch.float32)


def _frame(gray: torch.Tensor) -> torch.Tensor:
    """(N, H, W) luminance in [0, 1] to (N, 1, 28, 28) MNIST-framed digits.

    The decisions (polarity, lighting, levels, marks, centre of mass) are taken on a
    coarse copy; the full-size image is touched only a few times, to clean it with
    their results, find the ink's box and resample it.
    """
    count, height, width = gray.shape
    if count == 0:
        return torch.zeros(0, 1, _FRAME, _FRAME)
    image = gray.unsqueeze(1)
    coarse = F.adaptive_avg_pool2d(image, _work_size(height, width))
    dark = _ink_is_dark(coarse).view(count, 1, 1, 1)
    # Ink is bright from here on: ink = sign * gray + flip.
    sign = torch.where(dark, -1.0, 1.0)
    flip = dark.to(torch.float32)
    coarse_ink = torch.addcmul(flip, coarse, sign)
    lighting = _background(coarse_ink)
    coarse_ink = (coarse_ink - lighting).clamp_(min=0.0)
    full_lighting = F.interpolate(
        lighting - flip, size=(height, width), mode="bilinear", align_corners=False
    )
    ink = torch.addcmul(full_lighting.neg_(), image, sign)  # sign * gray + flip - lighting

    threshold, level = _otsu_and_ink_level(coarse_ink)
    ring = _border(ink[:, 0], 1 if min(height, width) < 8 else 2).clamp_(min=0.0)
    median = ring.median(dim=1).values
    spread = (ring - median.unsqueeze(1)).abs().median(dim=1).values
    noise = torch.minimum(median + 3 * 1.4826 * spread, threshold / 2)
    contrast = level - noise
    visible = contrast >= _MIN_CONTRAST
    gain = torch.where(visible, 1.0 / contrast.clamp_min(_MIN_CONTRAST), torch.zeros(()))
    noise, gain = noise.view(count, 1, 1, 1), gain.view(count, 1, 1, 1)
    coarse_clean = ((coarse_ink - noise) * gain).clamp_(0.0, 1.0)
    keep = _keep_marks(coarse_clean)
    clean = ink.sub_(noise).mul_(gain).clamp_(0.0, 1.0)
    clean *= F.interpolate(keep, size=(height, width), mode="nearest")
    return _crop_scale_centre(clean)


def _first_last(present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First and last True index along dim 1 of (N, L); meaningless where none is True."""
    length = present.shape[1]
    as_int = present.to(torch.int8)
    first = as_int.argmax(dim=1)
    last = length - 1 - as_int.flip(1).argmax(dim=1)
    return first, last


def _centre_of_mass(clean: torch.Tensor) -> torch.Tensor:
    """(N, 2) centre of mass (y, x) of (N, 1, H, W) ink, pixel centres at integers."""
    _, _, height, width = clean.shape
    ys = torch.arange(height, dtype=torch.float32)
    xs = torch.arange(width, dtype=torch.float32)
    row_mass = clean.sum(dim=3)[:, 0]
    col_mass = clean.sum(dim=2)[:, 0]
    mass = row_mass.sum(dim=1).clamp_min(1e-12)
    return torch.stack(((row_mass * ys).sum(dim=1) / mass, (col_mass * xs).sum(dim=1) / mass), 1)


def _crop_scale_centre(clean: torch.Tensor) -> torch.Tensor:
    """Fit each digit's ink box into 20x20 and put its centre of mass at (14, 14)."""
    count, _, height, width = clean.shape
    rows = clean.amax(dim=3)[:, 0] > _BOX_LEVEL
    cols = clean.amax(dim=2)[:, 0] > _BOX_LEVEL
    present = rows.any(dim=1)
    top, bottom = _first_last(rows)
    left, right = _first_last(cols)
    extent = torch.maximum(bottom - top + 1, right - left + 1).to(torch.float32)
    # Source pixels per output pixel; small digits are enlarged at most _MAX_ZOOM times.
    step = (extent / _BOX).clamp_(min=1.0 / _MAX_ZOOM)
    snap = (step - 1.0).abs() <= _SNAP
    step = torch.where(snap, torch.ones_like(step), step)
    centre = _centre_of_mass(clean)
    centre = torch.where(snap.unsqueeze(1), _CENTRE - torch.round(_CENTRE - centre), centre)

    # Area averaging when shrinking: each output pixel averages `sub` x `sub` bilinear
    # samples spread over (step - 1) source pixels; the bilinear tent adds the last one.
    spread = (step - 1.0).clamp_(min=0.0)
    sub = min(4, max(1, math.ceil(float(spread.max()))))
    offsets = (torch.arange(sub, dtype=torch.float32) + 0.5) / sub - 0.5
    out = torch.arange(_FRAME, dtype=torch.float32) - _CENTRE
    along = out.repeat_interleave(sub).unsqueeze(0) * step.unsqueeze(1)
    along = along + offsets.repeat(_FRAME).unsqueeze(0) * spread.unsqueeze(1)
    source_y = (2 * (centre[:, :1] + along) + 1) / height - 1
    source_x = (2 * (centre[:, 1:] + along) + 1) / width - 1
    size = _FRAME * sub
    grid = torch.stack(
        (
            source_x.unsqueeze(1).expand(count, size, size),
            source_y.unsqueeze(2).expand(count, size, size),
        ),
        dim=3,
    )
    sampled = F.grid_sample(clean, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    framed = F.avg_pool2d(sampled, sub) if sub > 1 else sampled
    framed = framed * present.view(count, 1, 1, 1)
    return framed.clamp_(0.0, 1.0)

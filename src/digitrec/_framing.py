"""MNIST's framing, a whole batch at a time: the steps behind :func:`~digitrec.prepare_digits`.

Polarity, lighting, levels, marks and the crop-scale-centre step, each a tensor
function over the batch (the only Python loop groups pixels into marks).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

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


def border(images: torch.Tensor, width: int) -> torch.Tensor:
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
    edge = border(coarse[:, 0], 1).median(dim=1).values
    position = (edge - low) / (high - low).clamp_min(1e-6)
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


def frame(gray: torch.Tensor) -> torch.Tensor:
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
    ring = border(ink[:, 0], 1 if min(height, width) < 8 else 2).clamp_(min=0.0)
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

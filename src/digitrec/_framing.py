"""MNIST's framing, a whole batch at a time: the steps behind :func:`~digitrec.prepare_digits`.

Polarity, lighting, levels, marks and the crop-scale-centre step, each a tensor
function over the batch (the only Python loop groups pixels into marks).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

#: MNIST's frame: 28x28 pixels, the digit fitted to a 20x20 box, its centre of mass at
#: pixel (14, 14) (pixel centres at integer coordinates).
_FRAME = 28
_BOX = 20
_CENTRE = 14.0
#: Longest side of the coarse copy used for polarity, background and marks.
_WORK = 32
_MARKS_WORK = 24  #: longest side of the coarse copy the separate marks are found on
_BACKGROUND_WORK = 16  #: longest side of the coarser copy the lighting is fitted on
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
_MAX_ZOOM = 4.0  #: digits are enlarged at most this much, so a dot stays a dot
#: A digit whose box is within this share of 20 pixels is not resampled, only shifted
#: by whole pixels, so MNIST-framed digits pass through unchanged.
_SNAP = 0.05
#: The ink level is this quantile of the pixels above Otsu's threshold; it becomes 1.
_INK_QUANTILE = 0.9
_TENT_ELEMENTS = 65_536  #: tents up to this many (sample, pixel) pairs, scatters above


def _work_size(height: int, width: int, longest: int = _WORK) -> tuple[int, int]:
    """A coarse copy's size: at most ``longest`` on the longer side, never enlarged."""
    scale = min(1.0, longest / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _odd(value: float) -> int:
    return max(3, int(value) // 2 * 2 + 1)


# Resizing and smoothing: a (new, old) matrix per axis, built once per size by torch's
# own op on an identity, so a batch costs two matrix products.


@lru_cache(maxsize=64)
def _pool_matrix(size: int, new: int) -> torch.Tensor:
    """(new, size): adaptive average pooling from ``size`` to ``new`` pixels."""
    return F.adaptive_avg_pool1d(torch.eye(size).unsqueeze(0), new)[0].T.contiguous()


@lru_cache(maxsize=64)
def _nearest_matrix(size: int, new: int) -> torch.Tensor:
    """(new, size): nearest-neighbour resizing from ``size`` to ``new`` pixels."""
    return F.interpolate(torch.eye(size).unsqueeze(0), size=new, mode="nearest")[0].T.contiguous()


@lru_cache(maxsize=64)
def _box_matrix(size: int, kernel: int) -> torch.Tensor:
    """(size, size): the mean over ``kernel`` pixels, counting only those inside."""
    eye = torch.eye(size).unsqueeze(0)
    box = F.avg_pool1d(eye, kernel, 1, kernel // 2, count_include_pad=False)
    return box[0].T.contiguous()


@lru_cache(maxsize=64)
def _quadratic_rows(size: int, new: int) -> torch.Tensor:
    """(new, 3): 1, t, t² at ``size`` cell centres in [-1, 1], bilinearly resized to ``new``."""
    t = (torch.arange(size, dtype=torch.float64) + 0.5) / size * 2 - 1
    powers = torch.stack((torch.ones_like(t), t, t * t), dim=1).to(torch.float32)
    if new == size:
        return powers
    resize = F.interpolate(torch.eye(size).unsqueeze(0), size=new, mode="linear")[0]
    return (resize.T @ powers).contiguous()


def _separable(images: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``rows @ image @ cols.T`` for each (N, 1, h, w) image, as (N, 1, new_h, new_w)."""
    return (rows @ (images @ cols.T)).view(images.shape[0], 1, rows.shape[0], cols.shape[0])


def _resize(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Adaptive average pooling of (N, 1, h, w) to (N, 1, height, width)."""
    h, w = images.shape[-2:]
    if (h, w) == (height, width):
        return images
    return _separable(images, _pool_matrix(h, height), _pool_matrix(w, width))


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
    height, width = coarse.shape[-2:]
    kernel = _odd(max(height, width) / 2)
    mean = _separable(coarse, _box_matrix(height, kernel), _box_matrix(width, kernel))
    deviation = (coarse - mean).flatten(1)
    deviates_dark = -deviation.amin(dim=1) > deviation.amax(dim=1)
    clear = (position - 0.5).abs() > _POLARITY_MARGIN
    return torch.where(clear, position > 0.5, deviates_dark)


@lru_cache(maxsize=16)
def _fit_basis(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(h * w, 6): 1, x, y, x², xy, y² at the cell centres in [-1, 1]; (h * w, 36): outer."""
    ys = (torch.arange(height, dtype=torch.float64) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, dtype=torch.float64) + 0.5) / width * 2 - 1
    y, x = (grid.flatten() for grid in torch.meshgrid(ys, xs, indexing="ij"))
    basis = torch.stack((torch.ones_like(x), x, y, x * x, x * y, y * y), dim=1)
    return basis, (basis.unsqueeze(2) * basis.unsqueeze(1)).flatten(1)


def _background(coarse: torch.Tensor) -> torch.Tensor:
    """Fit the lighting under bright ink on a coarse (N, 1, h, w) copy: (N, 3, 3) surfaces.

    A quadratic surface (a gradient plus a vignette) is fitted by least squares to
    an even coarser copy, a few times over, each time to the cells that lie on or
    below the previous fit: bright ink drops out and the paper remains. The result
    ``M`` gives the surface ``rows @ M @ cols.T`` for the (1, t, t²) of rows and cols.
    """
    small = _resize(coarse, *_work_size(coarse.shape[-2], coarse.shape[-1], _BACKGROUND_WORK))
    count, _, height, width = small.shape
    basis, outer = _fit_basis(height, width)
    # float64: on a few rows or columns y² or x² is nearly 1, and the fit nearly singular.
    values = small.reshape(count, -1).to(torch.float64)
    weights = torch.ones_like(values)
    ridge = 1e-6 * torch.eye(6, dtype=torch.float64)
    for _ in range(_BACKGROUND_ROUNDS):
        gram = (weights @ outer).view(count, 6, 6) + ridge
        coefficients = torch.linalg.solve(gram, ((weights * values) @ basis).unsqueeze(2))
        fitted = (basis @ coefficients).squeeze(2)
        previous, weights = weights, (values - fitted <= _BACKGROUND_TOLERANCE).to(values.dtype)
        if torch.equal(weights, previous):
            break  # the same cells again: every further round gives the same fit
    c = coefficients.squeeze(2).to(torch.float32)
    zero = torch.zeros_like(c[:, 0])
    # 1, x, y, x², xy, y² as [1, y, y²] @ M @ [1, x, x²].T
    return torch.stack(
        (c[:, 0], c[:, 1], c[:, 3], c[:, 2], c[:, 4], zero, c[:, 5], zero, zero), dim=1
    ).view(count, 3, 3)


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
    """The 3x3 maximum of non-negative (N, h, w) over the pixels inside (zeros pad)."""
    padded = F.pad(images, (1, 1, 1, 1))
    rows = torch.maximum(torch.maximum(padded[:, :-2], padded[:, 1:-1]), padded[:, 2:])
    return torch.maximum(torch.maximum(rows[:, :, :-2], rows[:, :, 1:-1]), rows[:, :, 2:])


def _label_marks(mask: torch.Tensor) -> torch.Tensor:
    """Label the 8-connected marks of a (N, h, w) boolean mask: (N, h * w), 0 where no mark.

    Each mark gets 1 + the largest flat index of its pixels: labels spread to their
    neighbours with a 3x3 maximum and jump along the labels they point to, a few
    batched rounds in all instead of a loop over images or marks. A label names slot
    ``label`` of a buffer whose slot 0 holds 0, so no mark needs no special case.
    """
    count, height, width = mask.shape
    size = height * width
    inside = mask.reshape(count, size).to(torch.int32)
    labels = torch.arange(1, size + 1, dtype=torch.int32) * inside
    buffer = torch.zeros(count, size + 1, dtype=torch.int32)
    spread = buffer[:, 1:]
    for _ in range(size):
        torch.mul(_max3(labels.view(count, height, width)).view(count, size), inside, out=spread)
        jumped = torch.maximum(buffer.gather(1, spread.to(torch.int64)), spread)
        if torch.equal(jumped, labels):
            break
        labels = jumped
    return labels.to(torch.int64)


@lru_cache(maxsize=16)
def _corners(height: int, width: int) -> torch.Tensor:
    """(4, h * w) int16: each pixel's row, column, -row and -column."""
    ys = torch.arange(height, dtype=torch.int16).repeat_interleave(width)
    xs = torch.arange(width, dtype=torch.int16).repeat(height)
    return torch.stack((ys, xs, -ys, -xs))


def _keep_marks(coarse: torch.Tensor) -> torch.Tensor:
    """A (N, 1, h, w) 0/1 mask of the marks of a coarse clean copy that are large enough.

    A mark stays when its longer side is at least a quarter of the largest mark's,
    so specks go while a detached bar or the second stroke of an "11" stays.
    """
    coarse = _resize(coarse, *_work_size(coarse.shape[-2], coarse.shape[-1], _MARKS_WORK))
    count, _, height, width = coarse.shape
    size = height * width
    # Dilated, so that a stroke thinned out by the averaging stays one mark.
    mask = _max3((coarse[:, 0] > 0.2).to(torch.float32)) > 0
    labels = _label_marks(mask)
    # Each mark's least and (negated) greatest row and column, in one scatter.
    slots = labels.unsqueeze(1) + torch.arange(0, 4 * (size + 1), size + 1).view(1, 4, 1)
    bounds = torch.full((count, 4 * (size + 1)), size, dtype=torch.int16)
    corners = _corners(height, width).expand(count, -1, -1)
    bounds.scatter_reduce_(1, slots.view(count, -1), corners.reshape(count, -1), "amin")
    bounds = bounds.view(count, 4, size + 1)
    extent = (-bounds[:, 2:] - bounds[:, :2] + 1).amax(dim=1).clamp_(min=0).to(torch.float32)
    extent[:, 0] = 0.0
    large = extent >= _MIN_MARK * extent.amax(dim=1, keepdim=True)
    large[:, 0] = False
    keep = large.gather(1, labels)
    return keep.view(count, 1, height, width).to(torch.float32)


def frame(gray: torch.Tensor) -> torch.Tensor:
    """(N, H, W) luminance in [0, 1] to (N, 1, 28, 28) MNIST-framed digits; overwrites ``gray``.

    The decisions (polarity, lighting, levels, marks, centre of mass) are taken on a
    coarse copy; the full-size image is touched only a few times, to clean it with
    their results, find the ink's box and resample it.
    """
    count, height, width = gray.shape
    if count == 0:
        return torch.zeros(0, 1, _FRAME, _FRAME)
    image = gray.unsqueeze(1)
    work = _work_size(height, width)
    coarse = _resize(image, *work)
    dark = _ink_is_dark(coarse).view(count, 1, 1, 1)
    # Ink is bright from here on: ink = sign * gray + flip.
    sign = torch.where(dark, -1.0, 1.0)
    flip = dark.to(torch.float32)
    coarse_ink = torch.addcmul(flip, coarse, sign)
    surfaces = _background(coarse_ink)
    lighting = _quadratic_rows(work[0], work[0]) @ surfaces @ _quadratic_rows(work[1], work[1]).T
    coarse_ink = (coarse_ink - lighting.unsqueeze(1)).clamp_(min=0.0)
    # The lighting less the flip, ``rows @ surfaces @ cols.T`` at full size.
    surfaces[:, 0, 0] -= flip.view(count)
    rows, cols = _quadratic_rows(work[0], height), _quadratic_rows(work[1], width)

    threshold, level = _otsu_and_ink_level(coarse_ink)
    edge = 1 if min(height, width) < 8 else 2
    sides = (
        rows[:edge] @ surfaces @ cols.T,
        rows[-edge:] @ surfaces @ cols.T,
        rows @ surfaces @ cols[:edge].T,
        rows @ surfaces @ cols[-edge:].T,
    )
    lit = torch.cat([side.reshape(count, -1) for side in sides], dim=1)
    ring = (border(gray, edge) * sign.view(count, 1) - lit).clamp_(min=0.0)
    median = ring.median(dim=1).values
    spread = (ring - median.unsqueeze(1)).abs().median(dim=1).values
    noise = torch.minimum(median + 3 * 1.4826 * spread, threshold / 2)
    contrast = level - noise
    visible = contrast >= _MIN_CONTRAST
    gain = torch.where(visible, 1.0 / contrast.clamp_min(_MIN_CONTRAST), torch.zeros(()))
    noise, gain = noise.view(count, 1, 1, 1), gain.view(count, 1, 1, 1)
    coarse_clean = ((coarse_ink - noise) * gain).clamp_(0.0, 1.0)
    keep = _keep_marks(coarse_clean)
    # clean = (sign * gray - lighting + flip - noise) * gain, kept marks only,
    # = (gray - sign * (lighting - flip + noise)) * sign * gain.
    surfaces[:, 0, 0] += noise.view(count)
    surfaces *= -sign.view(count, 1, 1)
    clean = gray.baddbmm_(rows @ surfaces, cols.T.expand(count, -1, -1))
    up_rows = _nearest_matrix(keep.shape[-2], height)
    up_cols = _nearest_matrix(keep.shape[-1], width)
    scale = _separable(keep * (sign * gain), up_rows, up_cols)
    return _crop_scale_centre(clean.mul_(scale[:, 0]).clamp_(0.0, 1.0))


def _first_last(present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First and last True index along dim 1 of (N, L); meaningless where none is True."""
    length = present.shape[1]
    as_int = present.to(torch.int8)
    first = as_int.argmax(dim=1)
    last = length - 1 - as_int.flip(1).argmax(dim=1)
    return first, last


def _centre_of_mass(clean: torch.Tensor) -> torch.Tensor:
    """(N, 2) centre of mass (y, x) of (N, H, W) ink, pixel centres at integers."""
    _, height, width = clean.shape
    ys = torch.arange(height, dtype=torch.float32)
    xs = torch.arange(width, dtype=torch.float32)
    row_mass = clean.sum(dim=2)
    col_mass = clean.sum(dim=1)
    mass = row_mass.sum(dim=1).clamp_min(1e-12)
    return torch.stack(((row_mass * ys).sum(dim=1) / mass, (col_mass * xs).sum(dim=1) / mass), 1)


def _resampling(position: torch.Tensor, size: int, sub: int) -> torch.Tensor:
    """(N, 28, size) weights of bilinear samples at (N, 28 * sub) pixel positions.

    Each output pixel averages its ``sub`` samples; pixels outside count as zeros. A
    bilinear sample at ``x`` weighs pixel ``p`` by the tent ``max(0, 1 - |x - p|)``
    (quicker for few small images; large batches scatter each sample's two weights).
    """
    count = position.shape[0]
    if count * sub * size > _TENT_ELEMENTS:
        return _resampling_scattered(position, size, sub)
    pixels = torch.arange(size, dtype=position.dtype)
    tents = (position.view(count, _FRAME, sub, 1) - pixels).abs_().neg_().add_(1.0).clamp_(min=0.0)
    return tents.sum(dim=2).mul_(1.0 / sub)


def _resampling_scattered(position: torch.Tensor, size: int, sub: int) -> torch.Tensor:
    """:func:`_resampling` for large batches: each sample adds to its two pixels."""
    count, samples = position.shape
    low = position.floor()
    high_share = position - low
    output = (torch.arange(samples) // sub * (size + 2)).unsqueeze(0)
    weights = torch.zeros(count, _FRAME * (size + 2))
    for index, share in ((low, 1.0 - high_share), (low + 1.0, high_share)):
        inside = (index >= 0) & (index < size)
        share = torch.where(inside, share, torch.zeros(())) / sub
        column = index.clamp(-1.0, float(size)).to(torch.int64) + 1
        weights.scatter_add_(1, output + column, share)
    return weights.view(count, _FRAME, size + 2)[:, :, 1:-1].contiguous()


def _crop_scale_centre(clean: torch.Tensor) -> torch.Tensor:
    """Fit each (N, H, W) digit's ink box into 20x20, its centre of mass at (14, 14)."""
    count, height, width = clean.shape
    rows = clean.amax(dim=2) > _BOX_LEVEL
    cols = clean.amax(dim=1) > _BOX_LEVEL
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
    # Bilinear sampling on a grid is separable: a (28, H) and a (28, W) matrix per image.
    spread = (step - 1.0).clamp_(min=0.0)
    sub = min(4, max(1, math.ceil(float(spread.max()))))
    offsets = (torch.arange(sub, dtype=torch.float32) + 0.5) / sub - 0.5
    out = torch.arange(_FRAME, dtype=torch.float32) - _CENTRE
    along = out.repeat_interleave(sub).unsqueeze(0) * step.unsqueeze(1)
    along = along + offsets.repeat(_FRAME).unsqueeze(0) * spread.unsqueeze(1)
    down = _resampling(centre[:, :1] + along, height, sub)
    across = _resampling(centre[:, 1:] + along, width, sub)
    framed = (down @ clean @ across.mT) * present.view(count, 1, 1)
    return framed.clamp_(0.0, 1.0).unsqueeze(1)

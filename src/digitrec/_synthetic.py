"""Render MNIST digits as the images users really hold, for tests, benchmarks and docs.

:func:`render_photos` turns MNIST digits into photographs or scans of digits written on
paper: dark ink on light, tinted paper, any size from 30 to 200 pixels, the digit
off-centre, small or large and slightly rotated, under uneven lighting, blurred, noisy,
with specks of dust, and saved as JPEG. :func:`render_tight_crops` gives the digits
cut to their ink and resized to another resolution, as a segmenter hands them over.
Both are deterministic: the same digits and seed give the same pixels.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image, ImageFilter

__all__ = ["render_photos", "render_tight_crops"]

#: Ink colours (RGB, 0-1): black and blue ballpoint, felt tip, pencil.
_INKS = (
    (0.08, 0.08, 0.10),
    (0.10, 0.14, 0.45),
    (0.15, 0.12, 0.18),
    (0.35, 0.35, 0.37),
)


def _ink_box(digit: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(digit.any(axis=1))
    cols = np.flatnonzero(digit.any(axis=0))
    if rows.size == 0:
        return digit
    return digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize float pixels with PIL's bicubic filter (anti-aliased when shrinking)."""
    image = Image.fromarray(array.astype(np.float32), mode="F")
    resized = image.resize((width, height), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def _digits_as_arrays(digits: torch.Tensor) -> np.ndarray:
    if digits.dtype != torch.uint8 or digits.dim() != 4 or digits.shape[1] != 1:
        raise ValueError(f"digits must be uint8 (N, 1, H, W), got {digits.dtype} {digits.shape}")
    return digits[:, 0].numpy().astype(np.float32) / 255.0


def _photo(digit: np.ndarray, rng: np.random.Generator, size: tuple[int, int] | None) -> np.ndarray:
    if size is None:
        height = int(rng.integers(30, 201))
        width = height if rng.random() < 0.4 else int(rng.integers(30, 201))
    else:
        height, width = size
    ink = _ink_box(digit)
    angle = float(rng.uniform(-8.0, 8.0))
    fraction = float(rng.uniform(0.35, 0.8))
    scale = min(fraction * min(height, width) / ink.shape[0], 0.9 * width / ink.shape[1])
    ink_h = max(4, round(ink.shape[0] * scale))
    ink_w = max(2, round(ink.shape[1] * scale))
    stroke = _resize(ink, ink_h, ink_w)
    rotated = Image.fromarray(stroke, mode="F").rotate(
        angle, resample=Image.Resampling.BILINEAR, expand=True
    )
    stroke = np.clip(np.asarray(rotated, dtype=np.float32), 0.0, 1.0)
    stroke = stroke[: height - 1, : width - 1]
    top = int(rng.integers(0, height - stroke.shape[0] + 1))
    left = int(rng.integers(0, width - stroke.shape[1] + 1))
    layer = np.zeros((height, width), dtype=np.float32)
    layer[top : top + stroke.shape[0], left : left + stroke.shape[1]] = stroke

    # Dust: a few small dark specks anywhere on the paper.
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    for _ in range(int(rng.integers(0, 4))):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        radius = float(rng.uniform(0.5, 1.5))
        speck = np.clip(radius + 0.5 - np.hypot(ys - cy, xs - cx), 0.0, 1.0)
        layer = np.maximum(layer, speck * float(rng.uniform(0.3, 0.8)))

    paper = float(rng.uniform(0.7, 0.97)) * (1.0 - rng.uniform(0.0, 0.12, size=3))
    ink_rgb = np.asarray(_INKS[int(rng.integers(len(_INKS)))]) * rng.uniform(0.8, 1.2)
    reflectance = paper * (1.0 - layer[..., None]) + ink_rgb * layer[..., None]

    theta = float(rng.uniform(0.0, 2.0 * np.pi))
    ramp = (xs * np.cos(theta) + ys * np.sin(theta)) / max(height, width)
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    lighting = 1.0 - float(rng.uniform(0.0, 0.4)) * ramp
    radius2 = ((ys - height / 2) / height) ** 2 + ((xs - width / 2) / width) ** 2
    lighting *= 1.0 - float(rng.uniform(0.0, 0.3)) * radius2 / 0.5
    pixels = reflectance * lighting[..., None]

    image = Image.fromarray(np.clip(pixels * 255.0, 0, 255).round().astype(np.uint8), "RGB")
    blur = float(rng.uniform(0.0, 0.035)) * ink_h
    if blur > 0.3:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    noisy = np.asarray(image, dtype=np.float32) / 255.0
    noisy = noisy + rng.normal(0.0, float(rng.uniform(0.005, 0.04)), size=noisy.shape)
    image = Image.fromarray(np.clip(noisy * 255.0, 0, 255).round().astype(np.uint8), "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(rng.integers(35, 96)))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        photo: np.ndarray = np.array(decoded.convert("RGB"), dtype=np.uint8)
    return photo


def render_photos(
    digits: torch.Tensor, *, seed: int = 0, size: tuple[int, int] | None = None
) -> list[torch.Tensor]:
    """Render each digit as a JPEG photograph or scan of dark ink on paper.

    Args:
        digits: ``uint8`` ``(N, 1, H, W)`` white-on-black digits, such as MNIST's.
        seed: Seed of every random choice.
        size: ``(height, width)`` of every photo; ``None`` draws each side from
            30 to 200 pixels (square 40% of the time).

    Returns:
        One ``uint8`` ``(height, width, 3)`` RGB tensor per digit.

    Example:
        >>> from digitrec._synthetic import render_photos
        >>> digits = digitrec.load_mnist("test").images[:2]
        >>> photos = render_photos(digits, seed=0, size=(64, 48))
        >>> photos[0].shape, photos[0].dtype
        (torch.Size([64, 48, 3]), torch.uint8)
    """
    rng = np.random.default_rng(seed)
    return [torch.from_numpy(_photo(digit, rng, size)) for digit in _digits_as_arrays(digits)]


def render_tight_crops(digits: torch.Tensor, size: int) -> torch.Tensor:
    """Crop each digit to its ink, pad it to a square and resize it to ``size``.

    The digit fills its frame along its longer side, white on black, as a digit
    segmenter would cut it out of a form.

    Args:
        digits: ``uint8`` ``(N, 1, H, W)`` white-on-black digits.
        size: Side of the square output.

    Returns:
        ``uint8`` tensor of shape ``(N, 1, size, size)``.

    Example:
        >>> from digitrec._synthetic import render_tight_crops
        >>> render_tight_crops(digitrec.load_mnist("test").images[:3], 16).shape
        torch.Size([3, 1, 16, 16])
    """
    crops = []
    for digit in _digits_as_arrays(digits):
        ink = _ink_box(digit)
        side = max(ink.shape)
        square = np.zeros((side, side), dtype=np.float32)
        top, left = (side - ink.shape[0]) // 2, (side - ink.shape[1]) // 2
        square[top : top + ink.shape[0], left : left + ink.shape[1]] = ink
        crops.append(np.round(_resize(square, size, size) * 255.0).astype(np.uint8))
    return torch.from_numpy(np.stack(crops)).unsqueeze(1)

"""Turn a request's images (uploaded files or JSON pixels) into tensors, or refuse them."""

from __future__ import annotations

import torch

from ..errors import DigitrecError, InvalidInputError
from ..io import read_image
from .schemas import Image2D, PixelsRequest


def _read(blob: bytes, name: str, max_pixels: int) -> torch.Tensor:
    try:
        return read_image(blob, max_pixels=max_pixels)
    except DigitrecError as error:
        raise type(error)(f"file {name!r}: {error}") from error


def read_files(blobs: list[bytes], names: list[str], max_pixels: int) -> list[torch.Tensor]:
    """Read each uploaded file as :func:`~digitrec.read_image` does (``DataFileError`` if bad)."""
    return [_read(blob, name, max_pixels) for blob, name in zip(blobs, names, strict=True)]


def _one_image(rows: Image2D, where: str, max_value: float, max_pixels: int) -> torch.Tensor:
    height = len(rows)
    width = len(rows[0]) if rows else 0
    if height == 0 or width == 0:
        raise InvalidInputError(f"{where} must have at least one row and one column")
    if any(len(row) != width for row in rows):
        lengths = sorted({len(row) for row in rows})
        raise InvalidInputError(f"{where} must be rectangular: its rows have lengths {lengths}")
    if height * width > max_pixels:
        raise InvalidInputError(
            f"{where} has {height}x{width} = {height * width} pixels; at most {max_pixels} allowed"
        )
    image = torch.tensor(rows, dtype=torch.float64)
    bad = ~(torch.isfinite(image) & (image >= 0) & (image <= max_value))
    if bool(bad.any()):
        y, x = (int(i) for i in bad.nonzero()[0])
        raise InvalidInputError(
            f"{where}[{y}][{x}] must be a number from 0 to {max_value:g}, got {rows[y][x]!r}"
        )
    return image.div_(max_value).to(torch.float32).unsqueeze(0)


def pixel_count(request: PixelsRequest) -> int:
    """How many images the JSON holds: one ``[[...]]`` image, or a list of them."""
    pixels = request.pixels
    nested = bool(pixels) and bool(pixels[0]) and isinstance(pixels[0][0], list)
    return len(pixels) if nested else 1


def pixel_images(request: PixelsRequest, max_images: int, max_pixels: int) -> list[torch.Tensor]:
    """Return the JSON images as float32 ``(1, H, W)`` tensors in ``[0, 1]``."""
    pixels = request.pixels
    nested = bool(pixels) and bool(pixels[0]) and isinstance(pixels[0][0], list)
    images: list[Image2D] = pixels if nested else [pixels]  # type: ignore[assignment, list-item]
    if not images:
        raise InvalidInputError("pixels must hold at least one image")
    if len(images) > max_images:
        raise InvalidInputError(f"at most {max_images} images per request, got {len(images)}")
    single = len(images) == 1 and not nested
    return [
        _one_image(rows, "pixels" if single else f"pixels[{i}]", request.max_value, max_pixels)
        for i, rows in enumerate(images)
    ]

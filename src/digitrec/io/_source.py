"""What every image reader shares: sources (paths or bytes), argument checks, size limits."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from ..errors import DataFileError, DataNotFoundError, InvalidInputError, InvalidTypeError

ImageSource: TypeAlias = "str | os.PathLike[str] | bytes"
"""A path to an image file, or the file's bytes (an upload)."""

DEFAULT_MAX_PIXELS = 64_000_000
"""The largest image (width x height) read by default: 64 megapixels, 256 MB as float32."""

EXPECTED = "a PNG, JPEG, BMP, TIFF, WebP, .npy or DICOM image"
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2, as Pillow's "L"

Mode: TypeAlias = Literal["gray", "rgb"]
FloatArray: TypeAlias = npt.NDArray[np.float32]


def check_mode(mode: object) -> Mode | None:
    if mode is None or mode == "gray" or mode == "rgb":
        return mode
    raise InvalidInputError(f"mode must be 'gray', 'rgb' or None, got {mode!r}")


def check_background(background: object) -> float | Literal["auto"]:
    if background == "auto":
        return "auto"
    if (
        isinstance(background, (int, float))
        and not isinstance(background, bool)
        and 0.0 <= background <= 1.0
    ):
        return float(background)
    raise InvalidInputError(
        f"background must be a gray level in [0, 1] or 'auto', got {background!r}"
    )


def check_max_pixels(max_pixels: object) -> int:
    if isinstance(max_pixels, int) and not isinstance(max_pixels, bool) and max_pixels >= 1:
        return max_pixels
    raise InvalidInputError(f"max_pixels must be a positive integer, got {max_pixels!r}")


def read_source(source: object) -> tuple[bytes, str, str]:
    """Return the bytes of ``source``, the name to use in messages, and its lower-case suffix."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name, suffix = bytes(source), "<bytes>", ""
    elif isinstance(source, (str, os.PathLike)):
        path = as_path(source)
        name, suffix = repr(str(path)), path.suffix.lower()
        try:
            if path.is_dir():
                raise DataFileError(f"{name} is a folder, expected {EXPECTED} file")
            data = path.read_bytes()
        except FileNotFoundError as error:
            raise DataNotFoundError(f"no image file at {name}") from error
        except (OSError, ValueError) as error:  # permissions, special files, NUL in the name
            raise DataFileError(f"cannot read {name}: {error}") from error
    else:
        raise InvalidTypeError(
            f"source must be a path (str or os.PathLike) or bytes, got {type(source).__name__}"
        )
    if not data:
        raise DataFileError(f"{name} is empty (0 bytes), expected {EXPECTED}")
    return data, name, suffix


def check_size(name: str, width: int, height: int, max_pixels: int) -> None:
    if width < 1 or height < 1:
        raise DataFileError(f"{name} declares an empty image of {width}x{height} pixels")
    if width * height > max_pixels:
        raise DataFileError(
            f"{name} declares a {width}x{height} image ({width * height:,} pixels), more than "
            f"max_pixels={max_pixels:,}; refused before decoding (a decompression bomb?). "
            "Pass a larger max_pixels if the image is genuine"
        )


def scaled(values: npt.NDArray[Any], full_scale: float) -> FloatArray:
    scaled: FloatArray = values.astype(np.float32) / np.float32(full_scale)
    return scaled


def checked_float(values: npt.NDArray[Any], what: str) -> FloatArray:
    values = values.astype(np.float32)
    if values.size and not np.isfinite(values).all():
        raise DataFileError(f"{what} must be finite, got NaN or infinite values")
    if values.size and (values.min() < 0.0 or values.max() > 1.0):
        raise DataFileError(
            f"{what} must lie in [0, 1], got values in [{values.min():.4g}, {values.max():.4g}]"
        )
    return values


def luminance(colour: FloatArray) -> FloatArray:
    if colour.shape[0] == 1:
        return colour
    return np.tensordot(_LUMA, colour, axes=1)[None].astype(np.float32)


def as_path(path: object) -> Path:
    if isinstance(path, (str, os.PathLike)) and not isinstance(path, bytes):
        return Path(os.fspath(path)).expanduser()
    raise InvalidTypeError(f"expected a path (str or os.PathLike), got {type(path).__name__}")

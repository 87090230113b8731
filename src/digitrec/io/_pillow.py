"""PNG, JPEG, BMP, TIFF and WebP through Pillow (the ``images`` extra), 8- and 16-bit.

Only these five Pillow plugins ever see a file: a short list keeps the attack
surface small (Pillow's EPS plugin, for one, runs Ghostscript). The declared size
is checked before decoding; alpha is composited onto a background.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import DataFileError, MissingDependencyError
from ._source import EXPECTED, FloatArray, check_size, checked_float, luminance, scaled

if TYPE_CHECKING:
    from PIL import Image

_PILLOW_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP")


def pillow() -> Any:
    try:
        import PIL.Image
        import PIL.ImageOps
    except ImportError as error:
        raise MissingDependencyError(
            "reading PNG, JPEG, BMP, TIFF and WebP images needs Pillow: "
            'pip install "digitrec[images]"'
        ) from error
    return PIL


def read_with_pillow(
    data: bytes, name: str, background: float | Literal["auto"], max_pixels: int
) -> FloatArray:
    pil = pillow()
    pil.Image.init()  # registers TIFF and WebP, which Image.open looks up by name
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own limit; ours (max_pixels) is checked just below.
            warnings.simplefilter("ignore", pil.Image.DecompressionBombWarning)
            image = pil.Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS)
    except pil.Image.DecompressionBombError as error:
        raise DataFileError(
            f"{name} declares an image too large to decode safely: {error}"
        ) from error
    except pil.UnidentifiedImageError as error:
        raise DataFileError(
            f"{name} is not {EXPECTED}: its first bytes are {data[:8]!r}"
        ) from error
    except Exception as error:  # Pillow's plugins report corrupt headers with many types
        raise DataFileError(f"{name} has a corrupt image header: {error}") from error
    with image:
        width, height = image.size
        check_size(name, width, height, max_pixels)
        try:
            image.load()
        except Exception as error:  # truncated or corrupt pixel data, any decoder
            raise DataFileError(
                f"{name} is a {image.format} file whose pixel data cannot be decoded "
                f"(truncated or corrupt?): {error}"
            ) from error
        # A corrupt EXIF block gives no orientation: keep the pixels as stored.
        with contextlib.suppress(Exception):
            image = pil.ImageOps.exif_transpose(image)
        try:
            colour, alpha = pillow_pixels(image)
        except DataFileError as error:
            raise DataFileError(f"{name}: {error}") from error
        except Exception as error:  # a mode Pillow cannot convert
            raise DataFileError(
                f"{name} has pixels of mode {image.mode!r}, which cannot be read: {error}"
            ) from error
    if alpha is not None:
        colour = composite(colour, alpha, background)
    return colour


def pillow_pixels(image: Image.Image) -> tuple[FloatArray, FloatArray | None]:
    """Return the ``(C, H, W)`` colour in [0, 1] and the ``(H, W)`` alpha (or None)."""
    mode = image.mode
    if mode.startswith("I;16"):
        return scaled(np.asarray(image), 65535.0)[None], None
    if mode == "I":  # 32-bit integers: how Pillow opens some 16-bit files
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise DataFileError(
                f"its 32-bit integer pixels must lie in 0-65535 (16-bit), got values in "
                f"[{values.min()}, {values.max()}]"
            )
        return scaled(values, 65535.0)[None], None
    if mode == "F":
        return checked_float(np.asarray(image), "its 32-bit float pixels")[None], None
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "1":
        image = image.convert("L")
    elif mode in ("La", "PA"):
        image = image.convert("LA" if mode == "La" else "RGBA")
    elif mode == "RGBa":
        image = image.convert("RGBA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):  # CMYK, YCbCr, LAB, HSV, RGBX, ...
        image = image.convert("RGB")
    if image.mode == "L" and "transparency" in image.info:
        image = image.convert("LA")
    values = np.asarray(image)
    if values.ndim == 2:
        values = values[:, :, None]
    pixels = scaled(values, 255.0).transpose(2, 0, 1)
    if image.mode in ("LA", "RGBA"):
        return pixels[:-1], pixels[-1]
    return pixels, None


def composite(
    colour: FloatArray, alpha: FloatArray, background: float | Literal["auto"]
) -> FloatArray:
    if background == "auto":
        coverage = float(alpha.sum())
        ink = float((luminance(colour)[0] * alpha).sum()) / coverage if coverage else 0.0
        background = 0.0 if ink > 0.5 else 1.0
    blended: FloatArray = colour * alpha + np.float32(background) * (1.0 - alpha)
    np.clip(blended, 0.0, 1.0, out=blended)
    return blended

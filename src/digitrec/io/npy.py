"""One image in a ``.npy`` file: header checked before reading, never unpickled."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import DataFileError
from ._source import FloatArray, check_size, checked_float, scaled


def read_npy(data: bytes, name: str, max_pixels: int) -> FloatArray:
    """Return the ``(C, H, W)`` pixels in [0, 1] of the ``.npy`` file ``data``, checked."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except Exception as error:  # numpy reports bad headers with ValueError, SyntaxError, ...
        raise DataFileError(f"{name} is not a readable .npy file: {error}") from error
    unsigned = dtype.kind == "u" and dtype.itemsize in (1, 2)
    if not unsigned and dtype.kind != "f":
        raise DataFileError(
            f"{name} must hold uint8, uint16 or float pixels, got an array of dtype {dtype}"
        )
    if len(shape) == 2:
        height, width = shape
    elif len(shape) == 3 and shape[0] in (1, 3):
        height, width = shape[1:]
    elif len(shape) == 3 and shape[2] in (1, 3):
        height, width = shape[:2]
    else:
        raise DataFileError(
            f"{name} must hold one image of shape (H, W), (C, H, W) or (H, W, C) with C 1 "
            f"or 3, got an array of shape {shape}"
        )
    check_size(name, width, height, max_pixels)
    count = math.prod(shape)
    offset = stream.tell()
    if len(data) - offset < count * dtype.itemsize:
        raise DataFileError(
            f"{name} is truncated: its header declares {shape} {dtype} values "
            f"({count * dtype.itemsize:,} bytes), the file holds {len(data) - offset:,}"
        )
    values: npt.NDArray[Any] = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    values = values.reshape(shape, order="F" if fortran else "C")
    if len(shape) == 2:
        values = values[None]
    elif shape[0] not in (1, 3):
        values = np.moveaxis(values, 2, 0)
    if unsigned:
        return scaled(values, 255.0 if dtype.itemsize == 1 else 65535.0)
    try:
        return checked_float(values, "its float pixels")
    except DataFileError as error:
        raise DataFileError(f"{name}: {error}") from error

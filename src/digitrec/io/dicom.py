"""Read DICOM images (X-ray, CT, MR, ...) as display-ready float tensors.

A DICOM file stores raw detector or scanner values; turning them into the image a
radiologist sees takes the steps of the DICOM grayscale pipeline, which generic
readers (MONAI's, for one) leave to the caller: the modality LUT (rescale slope and
intercept, to Hounsfield units for CT), the VOI window (which range of those values
is shown), and the MONOCHROME1 inversion (some X-ray files store dense as dark).
:func:`read_dicom` applies them all and returns what any other reader returns: a
float32 ``(C, H, W)`` tensor in ``[0, 1]``, bright meaning dense. It needs pydicom,
the ``dicom`` extra.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from ..errors import DataFileError, InvalidInputError, MissingDependencyError
from ._source import DEFAULT_MAX_PIXELS, ImageSource, check_max_pixels, read_source

__all__ = ["read_dicom"]

_GRAY = ("MONOCHROME1", "MONOCHROME2")
# pydicom converts these to RGB while decoding (YBR_ICT and YBR_RCT come from JPEG 2000).
_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420")
_PALETTE = "PALETTE COLOR"

Float64Array = npt.NDArray[np.float64]


def read_dicom(
    source: ImageSource,
    *,
    window: tuple[float, float] | None = None,
    frame: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> torch.Tensor:
    """Read one DICOM image as a float32 ``(C, H, W)`` tensor in ``[0, 1]``.

    Grayscale images (``MONOCHROME1``/``MONOCHROME2``, 8 to 16 bits stored, signed
    or not) go through the DICOM grayscale pipeline:

    1. the modality LUT: ``RescaleSlope * stored + RescaleIntercept`` (or a Modality
       LUT Sequence), giving Hounsfield units for CT;
    2. the VOI transform, to ``[0, 1]``: the caller's ``window``, else the file's
       VOI LUT Sequence, else its first ``WindowCenter``/``WindowWidth`` pair (with
       its ``VOILUTFunction``: ``LINEAR``, ``LINEAR_EXACT`` or ``SIGMOID``), else
       the image's own minimum and maximum;
    3. ``MONOCHROME1`` images are inverted, so that bright always means dense.

    Colour images (``RGB``, ``YBR_*``, which are converted to RGB, and
    ``PALETTE COLOR``) give 3 channels scaled by their bit depth; windows do not
    apply to them.

    A multi-frame file (a CT series in one file, a cine loop) holds many images:
    pass ``frame`` to pick one. Without it, such a file is refused rather than
    guessed at, as reading a single image means one frame; only that frame is
    decoded.

    Compressed files (JPEG, JPEG-LS, JPEG 2000, RLE) need pydicom's decoder
    plugins: pylibjpeg with pylibjpeg-openjpeg or pylibjpeg-libjpeg, or Pillow
    for baseline JPEG and JPEG 2000.

    Args:
        source: A path (``str`` or path-like), or the file's content as ``bytes``.
        window: ``(center, width)`` in the modality's units (Hounsfield units for
            CT), applied with the ``LINEAR`` function of the DICOM standard; it
            overrides the file's window. ``width`` must be at least 1.
        frame: The frame to read from a multi-frame file, from 0.
        max_pixels: The largest ``Rows * Columns`` to decode; checked from the
            header before decoding.

    Returns:
        A float32 tensor of shape ``(1, H, W)`` (grayscale) or ``(3, H, W)``
        (colour) with values in ``[0, 1]``.

    Raises:
        MissingDependencyError: If pydicom is not installed.
        DataNotFoundError: If ``source`` is a path to nothing.
        DataFileError: If the file is not a DICOM image (not DICOM, no pixel data,
            an unsupported photometric interpretation or bit depth, pixel data that
            cannot be decoded), holds several frames and ``frame`` is None, or is
            larger than ``max_pixels``.
        InvalidInputError: If ``window``, ``frame`` or ``max_pixels`` is invalid, or
            ``frame`` is past the file's last frame.

    Example:
        >>> from pydicom.data import get_testdata_file
        >>> image = digitrec.io.read_dicom(get_testdata_file("CT_small.dcm"))
        >>> image.shape, float(image.min()), float(image.max())
        (torch.Size([1, 128, 128]), 0.0, 1.0)
        >>> image = digitrec.io.read_dicom(get_testdata_file("CT_small.dcm"), window=(40, 400))
    """
    window = _check_window(window)
    if frame is not None and (not isinstance(frame, int) or isinstance(frame, bool) or frame < 0):
        raise InvalidInputError(f"frame must be a non-negative integer or None, got {frame!r}")
    max_pixels = check_max_pixels(max_pixels)
    data, name, _ = read_source(source)
    return torch.from_numpy(
        _read_dicom_data(data, name, window=window, frame=frame, max_pixels=max_pixels)
    )


def _pydicom() -> Any:
    try:
        import pydicom
        import pydicom.pixels
    except ImportError as error:
        raise MissingDependencyError(
            'reading DICOM files needs pydicom 3 or later: pip install "digitrec[dicom]"'
        ) from error
    return pydicom


def _check_window(window: object) -> tuple[float, float] | None:
    if window is None:
        return None
    try:
        center, width = (float(value) for value in window)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"window must be a (center, width) pair of numbers, got {window!r}"
        ) from None
    if not (math.isfinite(center) and math.isfinite(width) and width >= 1.0):
        raise InvalidInputError(
            f"window must be a finite (center, width) with width >= 1, got {window!r}"
        )
    return center, width


def _read_dicom_data(
    data: bytes,
    name: str,
    *,
    window: tuple[float, float] | None,
    frame: int | None,
    max_pixels: int,
) -> npt.NDArray[np.float32]:
    pydicom = _pydicom()
    try:
        dataset = pydicom.dcmread(io.BytesIO(data), force=True)
        has_pixels = "PixelData" in dataset
    except Exception as error:  # pydicom reports malformed files with many exception types
        raise DataFileError(f"{name} is not a readable DICOM file: {error}") from error
    if not has_pixels:
        raise DataFileError(
            f"{name} has no pixel data (no PixelData element): it is not a DICOM image "
            f"or holds something else (modality {_text(dataset, 'Modality')!r}, "
            f"SOP class {_text(dataset, 'SOPClassUID')!r})"
        )
    try:
        header = _Header.read(dataset)
    except DataFileError as error:
        raise DataFileError(f"{name}: {error}") from error
    except Exception as error:  # a header element that cannot be parsed
        raise DataFileError(f"{name} has an unreadable image header: {error}") from error
    if header.rows * header.columns > max_pixels:
        raise DataFileError(
            f"{name} declares {header.columns}x{header.rows} pixels "
            f"({header.rows * header.columns:,}) per frame, more than max_pixels="
            f"{max_pixels:,}; refused before decoding"
        )
    if frame is None and header.frames > 1:
        raise DataFileError(
            f"{name} holds {header.frames} frames; pass frame=i (0 to {header.frames - 1}) "
            "to digitrec.io.read_dicom to read one"
        )
    if frame is not None and frame >= header.frames:
        raise InvalidInputError(
            f"frame={frame} is past the last frame of {name}, which holds "
            f"{header.frames} frame{'s' if header.frames > 1 else ''} (0 to {header.frames - 1})"
        )
    try:
        stored = pydicom.pixels.pixel_array(dataset, index=frame or 0)
    except Exception as error:  # decoders raise RuntimeError, NotImplementedError, ValueError...
        raise DataFileError(
            f"{name}: cannot decode its pixel data (transfer syntax "
            f"{_transfer_syntax(dataset)}): {error}"
        ) from error
    try:
        if header.photometric in _GRAY:
            pixels = _grayscale(pydicom, stored, dataset, header, window)[None]
        else:
            pixels = _colour(pydicom, stored, dataset, header, window)
    except (DataFileError, InvalidInputError) as error:
        raise type(error)(f"{name}: {error}") from error
    except Exception as error:  # a LUT or window element pydicom cannot apply
        raise DataFileError(f"{name}: cannot apply its LUT or window: {error}") from error
    return np.ascontiguousarray(np.clip(pixels, 0.0, 1.0), dtype=np.float32)


class _Header:
    """The image elements that decide how to read the pixels, checked."""

    def __init__(self, dataset: Any) -> None:
        self.rows = _int(dataset, "Rows")
        self.columns = _int(dataset, "Columns")
        self.frames = _int(dataset, "NumberOfFrames", default=1)
        self.bits_stored = _int(dataset, "BitsStored", default=_int(dataset, "BitsAllocated"))
        self.photometric = _text(dataset, "PhotometricInterpretation").strip().upper()

    @classmethod
    def read(cls, dataset: Any) -> _Header:
        header = cls(dataset)
        if header.rows < 1 or header.columns < 1 or header.frames < 1:
            raise DataFileError(
                f"it declares an empty image: Rows={header.rows}, Columns={header.columns}, "
                f"NumberOfFrames={header.frames}"
            )
        if header.photometric not in (*_GRAY, *_COLOUR, _PALETTE):
            raise DataFileError(
                f"its photometric interpretation {header.photometric!r} is not supported; "
                f"expected one of {', '.join((*_GRAY, *_COLOUR, _PALETTE))}"
            )
        if not 1 <= header.bits_stored <= 16:
            raise DataFileError(
                f"it stores {header.bits_stored}-bit pixels; 1 to 16 bits are supported "
                "(floating-point and 32-bit pixel data are not)"
            )
        return header


def _int(dataset: Any, keyword: str, default: int | None = None) -> int:
    value = dataset.get(keyword)
    if value is None or value == "":
        if default is None:
            raise DataFileError(f"its header lacks the required element {keyword}")
        return default
    return int(value)


def _text(dataset: Any, keyword: str) -> str:
    try:
        return str(dataset.get(keyword, ""))
    except Exception:  # an element that cannot be decoded still should not hide the real error
        return "?"


def _transfer_syntax(dataset: Any) -> str:
    try:
        syntax = dataset.file_meta.TransferSyntaxUID
        return f"{syntax.name} ({syntax})"
    except AttributeError:
        return "unknown"


def _grayscale(
    pydicom: Any,
    stored: npt.NDArray[Any],
    dataset: Any,
    header: _Header,
    window: tuple[float, float] | None,
) -> Float64Array:
    if stored.ndim != 2:
        raise DataFileError(
            f"a {header.photometric} frame must decode to (Rows, Columns), got shape "
            f"{stored.shape} (SamplesPerPixel is not 1?)"
        )
    values = np.asarray(pydicom.pixels.apply_modality_lut(stored, dataset), dtype=np.float64)
    if window is not None:
        shown = _window(values, *window, function="LINEAR")
    elif _has_sequence(dataset, "VOILUTSequence"):
        lut = dataset.VOILUTSequence[0]
        bits = int(lut.LUTDescriptor[2])
        if not 1 <= bits <= 16:
            raise DataFileError(f"its VOI LUT declares {bits}-bit entries; 1 to 16 are valid")
        # A LUT is indexed by integers; rescaled values are rounded to the nearest entry.
        indices = np.rint(np.clip(np.nan_to_num(values), -(2**31), 2**31)).astype(np.int64)
        shown = np.asarray(
            pydicom.pixels.apply_voi_lut(indices, dataset, prefer_lut=True), dtype=np.float64
        ) / float(2**bits - 1)
    elif (file_window := _file_window(dataset)) is not None:
        function = _text(dataset, "VOILUTFunction").strip().upper() or "LINEAR"
        shown = _window(values, *file_window, function=function)
    else:
        shown = _min_max(values)
    return 1.0 - shown if header.photometric == "MONOCHROME1" else shown


def _colour(
    pydicom: Any,
    stored: npt.NDArray[Any],
    dataset: Any,
    header: _Header,
    window: tuple[float, float] | None,
) -> Float64Array:
    if window is not None:
        raise InvalidInputError(
            f"window applies to grayscale (MONOCHROME1/2) images; this one is {header.photometric}"
        )
    if header.photometric == _PALETTE:
        if stored.ndim != 2:
            raise DataFileError(f"a PALETTE COLOR frame must be 2-D, got shape {stored.shape}")
        rgb = np.asarray(pydicom.pixels.apply_color_lut(stored, dataset))
        bits = int(dataset.RedPaletteColorLookupTableDescriptor[2])
        bits = 8 if bits <= 8 else 16  # entries are stored in 8 or 16 bits
    else:
        rgb, bits = stored, header.bits_stored
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise DataFileError(
            f"a {header.photometric} frame must decode to (Rows, Columns, 3), got shape {rgb.shape}"
        )
    scaled: Float64Array = rgb.transpose(2, 0, 1).astype(np.float64) / float(2**bits - 1)
    return scaled


def _has_sequence(dataset: Any, keyword: str) -> bool:
    return keyword in dataset and len(dataset.get(keyword) or ()) > 0


def _file_window(dataset: Any) -> tuple[float, float] | None:
    center, width = dataset.get("WindowCenter"), dataset.get("WindowWidth")
    if center is None or width is None or center == "" or width == "":
        return None
    # Multi-valued: several windows for the same image (lung, mediastinum); the first is
    # the default.
    center, width = _first(center), _first(width)
    try:
        return _check_window((float(center), float(width)))
    except (InvalidInputError, TypeError, ValueError) as error:
        raise DataFileError(
            f"its window (WindowCenter={center!r}, WindowWidth={width!r}) is invalid; "
            f"pass window=(center, width) to override it ({error})"
        ) from error


def _first(value: Any) -> Any:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return value[0] if len(value) else None
    return value


def _window(values: Float64Array, center: float, width: float, *, function: str) -> Float64Array:
    """The VOI functions of DICOM PS3.3 C.11.2.1.2, with output range [0, 1]."""
    if function == "LINEAR":
        if width <= 1.0:  # the standard's step function at center - 0.5
            return (values > center - 0.5).astype(np.float64)
        shown = (values - (center - 0.5)) / (width - 1.0) + 0.5
    elif function == "LINEAR_EXACT":
        shown = (values - center) / width + 0.5
    elif function == "SIGMOID":
        with np.errstate(over="ignore"):
            shown = 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    else:
        raise DataFileError(
            f"its VOILUTFunction {function!r} is not one of LINEAR, LINEAR_EXACT, SIGMOID"
        )
    return np.clip(shown, 0.0, 1.0)


def _min_max(values: Float64Array) -> Float64Array:
    low, high = float(values.min()), float(values.max())
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return np.zeros_like(values)
    return (values - low) / (high - low)

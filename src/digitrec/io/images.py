"""Read image files (PNG, JPEG, BMP, TIFF, WebP, ``.npy``, DICOM) into float tensors.

Every reader returns the same thing: a float32 ``(C, H, W)`` tensor in ``[0, 1]``
with ``C`` 1 or 3, whatever the file's bit depth, palette, alpha channel or
orientation flag. 16-bit files keep their 16 bits (``value / 65535``): the CLI used
to read them with Pillow's ``convert("L")``, which clips them to 8 bits.

Files come from users and from uploads, so the readers trust nothing: the declared
size is checked against ``max_pixels`` from the header, before any pixel buffer is
allocated, and every way a file can be unreadable ends in a
:class:`~digitrec.errors.DataFileError` (or :class:`~digitrec.errors.DataNotFoundError`
for a missing file) whose message names the file and says what was expected.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch

from ..errors import (
    DataFileError,
    DataNotFoundError,
    DigitrecError,
    InvalidInputError,
    InvalidTypeError,
    MissingDependencyError,
)
from ._pillow import read_with_pillow
from ._source import (
    DEFAULT_MAX_PIXELS,
    FloatArray,
    ImageSource,
    Mode,
    as_path,
    check_background,
    check_max_pixels,
    check_mode,
    luminance,
    read_source,
)
from .npy import read_npy

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "ImageSource",
    "ReadImagesResult",
    "list_image_files",
    "read_image",
    "read_images",
]

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".npy", ".dcm", ".dicom"}
)
"""The file name endings (lower case) that :func:`list_image_files` picks up."""

_NPY_MAGIC = b"\x93NUMPY"
_DICOM_SUFFIXES = (".dcm", ".dicom")
_MAX_LISTED_FAILURES = 50


class ReadImagesResult(NamedTuple):
    """What :func:`read_images` read, and what it could not.

    Fields (a named tuple, so it also unpacks): ``images``, one float32 ``(C, H, W)`` tensor
    per file read, in input order; ``paths``, the path of each tensor in ``images`` (same
    order, same length); ``failures``, ``(path, reason)`` for every file that could not be
    read.

    Example:
        >>> images, paths, failures = digitrec.io.read_images([], on_error="skip")
        >>> len(images), failures
        (0, [])
    """

    images: list[torch.Tensor]
    paths: list[Path]
    failures: list[tuple[Path, str]]


def read_image(
    source: ImageSource,
    *,
    mode: Mode | None = None,
    background: float | Literal["auto"] = 1.0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> torch.Tensor:
    """Read one image file, or its bytes, as a float32 ``(C, H, W)`` tensor in ``[0, 1]``.

    PNG, JPEG, BMP, TIFF and WebP are read with Pillow (the ``images`` extra);
    ``.npy`` files with numpy (never unpickled); DICOM files, recognised by a
    ``.dcm``/``.dicom`` name or the ``DICM`` marker at byte 128, with
    :func:`~digitrec.io.read_dicom` (the ``dicom`` extra; use it directly to pick a
    window or a frame). The file's format is found from its content, not its name.

    8-bit pixels are divided by 255 and 16-bit pixels by 65535, so a 16-bit PNG or
    TIFF keeps its full depth. Palette images become RGB, CMYK becomes RGB, and the
    EXIF orientation of photos is applied. ``.npy`` files hold one ``uint8``,
    ``uint16`` or float (in ``[0, 1]``) array of shape ``(H, W)``, ``(C, H, W)`` or
    ``(H, W, C)`` with ``C`` 1 or 3.

    An alpha channel is composited onto a plain ``background``. The default, white
    (``1.0``), is how every viewer shows a transparent image on a page: a digit drawn
    in dark ink on a transparent canvas reads as dark ink on white paper, as scanned
    digits do. (Dropping the alpha channel instead would show the canvas's hidden
    colour, usually black, and the dark ink would vanish into it.) A digit drawn in
    *white* ink on a transparent canvas would vanish on white: pass
    ``background=0.0`` for it, or ``background="auto"``, which picks black when the
    opaque pixels are on average lighter than mid-gray and white otherwise.

    Args:
        source: A path (``str`` or path-like), or the file's content as ``bytes``.
        mode: ``"gray"`` for 1 channel (luminance, ITU-R 601-2 weights as Pillow's
            ``"L"``), ``"rgb"`` for 3, ``None`` to keep the file's own: 1 for
            grayscale, 3 for colour.
        background: The gray level in ``[0, 1]`` that transparent pixels are
            composited onto, or ``"auto"``.
        max_pixels: The largest ``width * height`` to read. The size is checked from
            the header, before decoding, so a small file that declares a huge image
            (a decompression bomb) is refused without allocating it.

    Returns:
        A float32 tensor of shape ``(C, H, W)`` with values in ``[0, 1]``.

    Raises:
        DataNotFoundError: If ``source`` is a path to nothing.
        DataFileError: If the file is empty, a directory, truncated, corrupt, of a
            format not listed above, or larger than ``max_pixels``.
        MissingDependencyError: If the file needs Pillow or pydicom and it is not
            installed.
        InvalidInputError: If ``mode``, ``background`` or ``max_pixels`` is invalid.
        InvalidTypeError: If ``source`` is neither a path nor ``bytes``.

    Example:
        >>> import io
        >>> from PIL import Image
        >>> buffer = io.BytesIO()
        >>> Image.new("I;16", (4, 2), 65535).save(buffer, "PNG")
        >>> image = digitrec.io.read_image(buffer.getvalue())
        >>> image.shape, image.dtype, image.max().item()
        (torch.Size([1, 2, 4]), torch.float32, 1.0)
    """
    mode = check_mode(mode)
    background = check_background(background)
    max_pixels = check_max_pixels(max_pixels)
    data, name, suffix = read_source(source)
    if data[128:132] == b"DICM" or suffix in _DICOM_SUFFIXES:
        from .dicom import _read_dicom_data  # pydicom itself is imported only when needed

        pixels = _read_dicom_data(data, name, window=None, frame=None, max_pixels=max_pixels)
    elif data.startswith(_NPY_MAGIC):
        pixels = read_npy(data, name, max_pixels)
    else:
        pixels = read_with_pillow(data, name, background, max_pixels)
    return _convert_channels(pixels, mode)


def read_images(
    paths: Iterable[str | os.PathLike[str]],
    *,
    mode: Mode | None = None,
    background: float | Literal["auto"] = 1.0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    on_error: Literal["raise", "skip"] = "raise",
    progress: bool = False,
) -> ReadImagesResult:
    """Read many image files with :func:`read_image`, reporting every failure at once.

    Each file is tried, so one run finds every unreadable or missing file instead of
    stopping at the first.

    Args:
        paths: The files to read (see :func:`list_image_files` to expand folders).
        mode: As for :func:`read_image`.
        background: As for :func:`read_image`.
        max_pixels: As for :func:`read_image`, for each file.
        on_error: ``"raise"``: if any file cannot be read, raise one
            :class:`~digitrec.errors.DataFileError` that lists them (the first 50,
            and how many there are). ``"skip"``: read the others and return the
            failures in the result.
        progress: Show a progress bar on stderr when tqdm (the ``progress`` extra)
            is installed and stderr is a terminal.

    Returns:
        A :class:`ReadImagesResult` ``(images, paths, failures)``; ``failures`` is
        empty unless ``on_error="skip"``.

    Raises:
        DataFileError: If ``on_error="raise"`` and some files could not be read.
        MissingDependencyError: If a file needs Pillow or pydicom and it is not
            installed (a problem of the machine, not of the file, so never skipped).
        InvalidInputError: If an argument is invalid.

    Example:
        >>> result = digitrec.io.read_images(["no-such-file.png"], on_error="skip")
        >>> len(result.images), result.failures[0][0].name
        (0, 'no-such-file.png')
    """
    if on_error not in ("raise", "skip"):
        raise InvalidInputError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise InvalidTypeError(
            f"paths must be a list of paths, got a single {type(paths).__name__}; "
            "wrap it in a list or use read_image"
        )
    mode = check_mode(mode)
    background = check_background(background)
    max_pixels = check_max_pixels(max_pixels)
    files = [as_path(path) for path in paths]
    result = ReadImagesResult([], [], [])
    for path in _with_progress(files, progress):
        try:
            image = read_image(path, mode=mode, background=background, max_pixels=max_pixels)
        except MissingDependencyError:
            raise
        except DigitrecError as error:
            result.failures.append((path, str(error)))
            continue
        result.images.append(image)
        result.paths.append(path)
    if result.failures and on_error == "raise":
        raise DataFileError(_failure_report(result.failures, len(files)))
    return result


def list_image_files(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *, recursive: bool = True
) -> list[Path]:
    """Expand files and folders into the list of image files they hold.

    A folder is replaced by the files in it whose name ends in one of
    :data:`IMAGE_SUFFIXES` (in any case), in sub-folders too when ``recursive``,
    sorted by their path inside the folder; names starting with ``.`` (hidden files
    and folders) are skipped and symbolic links to folders are not followed. A file
    named explicitly is kept whatever its name, for :func:`read_image` to judge.
    The order is that of ``paths``, each folder's files sorted, duplicates removed.

    Args:
        paths: One path, or several; each a file or a folder.
        recursive: Look into sub-folders too.

    Returns:
        The files, as :class:`~pathlib.Path` objects.

    Raises:
        DataNotFoundError: If a path does not exist.
        InvalidTypeError: If ``paths`` holds something other than paths.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> folder = Path(tempfile.mkdtemp())
        >>> for name in ["b.png", "a.PNG", "notes.txt", ".hidden.png"]:
        ...     _ = (folder / name).write_bytes(b"")
        >>> [path.name for path in digitrec.io.list_image_files(folder)]
        ['a.PNG', 'b.png']
    """
    entries = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    files: dict[Path, None] = {}
    for entry in entries:
        path = as_path(entry)
        if path.is_dir():
            files.update(dict.fromkeys(_image_files_in(path, recursive)))
        elif path.exists():
            files[path] = None
        else:
            raise DataNotFoundError(f"no file or folder at {str(path)!r}")
    return list(files)


def _image_files_in(folder: Path, recursive: bool) -> list[Path]:
    found: list[Path] = []
    for root, folders, names in os.walk(folder):
        folders[:] = [] if not recursive else [name for name in folders if name[0] != "."]
        found.extend(
            Path(root, name)
            for name in names
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES
        )
    return sorted(found, key=lambda path: path.relative_to(folder).parts)


def _with_progress(files: list[Path], progress: bool) -> Iterator[Path]:
    if progress:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            pass
        else:
            # disable=None: no bar when stderr is not a terminal (logs, CI).
            yield from tqdm(files, unit="image", file=sys.stderr, disable=None, leave=False)
            return
    yield from files


def _failure_report(failures: list[tuple[Path, str]], total: int) -> str:
    lines = [f"{len(failures)} of {total} image files could not be read:"]
    lines += [f"  {reason}" for _, reason in failures[:_MAX_LISTED_FAILURES]]
    if len(failures) > _MAX_LISTED_FAILURES:
        lines.append(
            f"  ... and {len(failures) - _MAX_LISTED_FAILURES} more; pass on_error='skip' "
            "to read the others and get every failure"
        )
    return "\n".join(lines)


def _convert_channels(pixels: FloatArray, mode: Mode | None) -> torch.Tensor:
    if mode == "gray":
        pixels = luminance(pixels)
    elif mode == "rgb" and pixels.shape[0] == 1:
        pixels = np.repeat(pixels, 3, axis=0)
    return torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))

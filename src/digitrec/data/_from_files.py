"""Image files and their labels into one ``uint8`` batch: read, resize, quantize."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch

from .._checks import check_choice
from ..errors import DataFileError, InvalidInputError
from ..io import read_images
from ..io.folders import _read_rows
from ..preprocessing import ResizeMode, resize_images

Color = Literal["gray", "rgb"]
OnError = Literal["raise", "skip"]


def _check_size(size: object) -> tuple[int, int] | None:
    if size is None:
        return None
    sides = (size, size) if isinstance(size, int) else size
    if (
        not isinstance(sides, (tuple, list))
        or len(sides) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sides)
    ):
        raise InvalidInputError(
            f"size must be None, a positive integer or (height, width), got {size!r}"
        )
    return int(sides[0]), int(sides[1])


def read_labelled_images(
    paths: Sequence[Path],
    labels: Sequence[int],
    *,
    size: int | tuple[int, int] | None,
    resize: ResizeMode,
    color: Color,
    on_error: OnError,
    progress: bool,
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Return ``(uint8 images (N, C, H, W), int64 labels, positions)`` of the files read.

    ``positions`` are the indices into ``paths`` of the files that could be read.

    With ``on_error="skip"`` unreadable files are left out with a warning that
    counts and names them; otherwise one :class:`DataFileError` names them all.
    """
    target = _check_size(size)
    check_choice(resize, "resize", ("pad", "stretch"))
    check_choice(color, "color", ("gray", "rgb"))
    check_choice(on_error, "on_error", ("raise", "skip"))
    read = read_images(paths, mode=color, on_error=on_error, progress=progress)
    if read.failures:
        shown = ", ".join(str(path) for path, _ in read.failures[:5])
        more = f" and {len(read.failures) - 5} more" if len(read.failures) > 5 else ""
        warnings.warn(
            f"skipped {len(read.failures)} unreadable image file(s): {shown}{more}",
            stacklevel=3,
        )
    # read_images keeps the order of paths and leaves out only the failures.
    failed = {path for path, _ in read.failures}
    positions = [index for index, path in enumerate(paths) if Path(path).expanduser() not in failed]
    kept_labels = [labels[index] for index in positions]
    if not read.images:
        raise DataFileError("no image could be read, so the data set would be empty")
    if target is None:
        sizes = sorted({tuple(image.shape[1:]) for image in read.images})
        if len(sizes) > 1:
            raise InvalidInputError(
                f"the images have {len(sizes)} different sizes (e.g. {sizes[:3]}); pass "
                "size=(height, width) to resize them to one"
            )
        target = (int(sizes[0][0]), int(sizes[0][1]))
    batch = torch.cat(
        [
            resize_images(image.unsqueeze(0), target, mode=resize)
            if tuple(image.shape[1:]) != target
            else image.unsqueeze(0)
            for image in read.images
        ]
    )
    pixels = (batch * 255.0).round_().clamp_(0, 255).to(torch.uint8)
    return pixels, torch.tensor(kept_labels, dtype=torch.int64), positions


def csv_column(
    path: str | os.PathLike[str],
    column: str,
    *,
    split_column: str | None,
    split: str | None,
) -> list[str]:
    """Return one column of a CSV file, for the rows :func:`~digitrec.io.scan_csv` keeps."""
    table = Path(os.fspath(path)).expanduser()
    name = repr(str(table))
    columns = [column] + ([split_column] if split_column is not None else [])
    rows = _read_rows(table, name, columns)
    values: list[str] = []
    for line, row in rows:
        if split_column is not None and row[split_column] != split:
            continue
        if not row[column]:
            raise DataFileError(f"{name}, line {line}: the {column!r} column is empty")
        values.append(row[column])
    return values

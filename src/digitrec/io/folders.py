"""List labelled image files: one sub-folder per class, or a CSV file of paths and labels.

These functions only list: they return paths, integer labels and class names, and
read no image, so a data set of a million files is listed in seconds and every
unreadable file is found later, all at once, by :func:`~digitrec.io.read_images`.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import NamedTuple

from ..errors import DataFileError, DataNotFoundError, InvalidInputError
from .images import IMAGE_SUFFIXES, list_image_files

__all__ = ["LabelledFiles", "scan_csv", "scan_folder"]


class LabelledFiles(NamedTuple):
    """Image files with their labels, as :func:`scan_folder` and :func:`scan_csv` list them.

    Fields (a named tuple, so it also unpacks): ``paths``, the image files; ``labels``, the
    class index of each file, in ``range(len(class_names))``; ``class_names``, the name of
    each class, by index.

    Example:
        >>> files = digitrec.io.LabelledFiles([], [], ["cat", "dog"])
        >>> files.class_names
        ['cat', 'dog']
    """

    paths: list[Path]
    labels: list[int]
    class_names: list[str]


def scan_folder(root: str | os.PathLike[str]) -> LabelledFiles:
    """List a folder that holds one sub-folder of images per class.

    The layout of torchvision's ``ImageFolder``: ``root/cat/1.png``,
    ``root/dog/a/2.png``. Class names are the sub-folders' names, sorted (so the
    labels do not depend on the file system's order); each class's files are those
    :func:`~digitrec.io.list_image_files` finds in its folder, sub-folders included,
    sorted. Names starting with ``.`` are skipped, and so are files directly in
    ``root``. A class folder without image files is an error, not a silently missing
    class: a model trained without it would quietly have fewer outputs than asked.

    Args:
        root: The folder.

    Returns:
        The files, their labels and the class names.

    Raises:
        DataNotFoundError: If ``root`` does not exist.
        DataFileError: If ``root`` is not a folder, has no class folders, or a class
            folder holds no image files.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> root = Path(tempfile.mkdtemp())
        >>> for name in ["dog/1.png", "cat/2.png", "cat/1.png"]:
        ...     (root / name).parent.mkdir(exist_ok=True)
        ...     _ = (root / name).write_bytes(b"")
        >>> files = digitrec.io.scan_folder(root)
        >>> [path.name for path in files.paths], files.labels, files.class_names
        (['1.png', '2.png', '1.png'], [0, 0, 1], ['cat', 'dog'])
    """
    folder = Path(os.fspath(root)).expanduser()
    if not folder.exists():
        raise DataNotFoundError(f"no folder at {str(folder)!r}")
    if not folder.is_dir():
        raise DataFileError(f"{str(folder)!r} is a file, expected a folder of class folders")
    class_names = sorted(
        entry.name for entry in folder.iterdir() if entry.is_dir() and entry.name[0] != "."
    )
    if not class_names:
        raise DataFileError(
            f"{str(folder)!r} has no class folders; expected one sub-folder of images per "
            "class, such as root/cat/1.png and root/dog/2.png"
        )
    paths: list[Path] = []
    labels: list[int] = []
    empty: list[str] = []
    for label, name in enumerate(class_names):
        files = list_image_files(folder / name)
        if not files:
            empty.append(name)
        paths += files
        labels += [label] * len(files)
    if empty:
        raise DataFileError(
            f"class folders of {str(folder)!r} hold no image files: {', '.join(empty)} "
            f"(expected files ending in {', '.join(sorted(IMAGE_SUFFIXES))}); "
            "remove the folders or add images"
        )
    return LabelledFiles(paths, labels, class_names)


def scan_csv(
    path: str | os.PathLike[str],
    *,
    file_column: str = "file",
    label_column: str = "label",
    split_column: str | None = None,
    split: str | None = None,
) -> LabelledFiles:
    r"""List the image files and labels a CSV file names.

    The CSV has a header row; each following row names a file (relative to the CSV
    file's folder, or absolute) and its label. Labels are either all integers
    (``0``, ``1``, ...), used as they are with class names ``"0"`` to the largest,
    or names (``cat``, ``dog``), numbered in sorted order. Both are decided over
    every row, not only the chosen split, so the train and test splits of one CSV
    get the same class numbers. The files themselves are not checked here.

    Args:
        path: The CSV file (UTF-8, a byte-order mark allowed).
        file_column: The column of file paths.
        label_column: The column of labels.
        split_column: A column that assigns rows to splits (``train``, ``test``, ...).
        split: Keep only the rows whose ``split_column`` holds this value.

    Returns:
        The files, their labels and the class names.

    Raises:
        DataNotFoundError: If the CSV file does not exist.
        DataFileError: If it is not a readable CSV file, lacks a column, has a row
            with an empty or negative label or an empty file name (the message gives
            the line number), or has no row for ``split``.
        InvalidInputError: If only one of ``split_column`` and ``split`` is given.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> table = Path(tempfile.mkdtemp()) / "labels.csv"
        >>> _ = table.write_text("file,label\nb.png,dog\na.png,cat\n")
        >>> files = digitrec.io.scan_csv(table)
        >>> [path.name for path in files.paths], files.labels, files.class_names
        (['b.png', 'a.png'], [1, 0], ['cat', 'dog'])
    """
    if (split_column is None) != (split is None):
        raise InvalidInputError(
            "split_column and split go together: pass both or neither, got "
            f"split_column={split_column!r} and split={split!r}"
        )
    table = Path(os.fspath(path)).expanduser()
    name = repr(str(table))
    columns = [file_column, label_column] + ([split_column] if split_column is not None else [])
    rows = _read_rows(table, name, columns)
    labels_text = [row[label_column] for _, row in rows]
    if all(_is_int(label) for label in labels_text):
        numbers = [int(label) for label in labels_text]
        for (line, _), number in zip(rows, numbers, strict=True):
            if number < 0:
                raise DataFileError(f"{name}, line {line}: labels must be >= 0, got {number}")
        class_names = [str(number) for number in range(max(numbers) + 1)]
    else:
        class_names = sorted(set(labels_text))
        index = {label: number for number, label in enumerate(class_names)}
        numbers = [index[label] for label in labels_text]
    paths: list[Path] = []
    labels: list[int] = []
    for (_, row), number in zip(rows, numbers, strict=True):
        if split_column is None or row[split_column] == split:
            paths.append(table.parent / row[file_column])
            labels.append(number)
    if not paths:
        splits = sorted({row[split_column] for _, row in rows}) if split_column else []
        raise DataFileError(
            f"{name} has no row with {split_column}={split!r}; its splits are {splits}"
        )
    return LabelledFiles(paths, labels, class_names)


def _read_rows(table: Path, name: str, columns: list[str]) -> list[tuple[int, dict[str, str]]]:
    """Return ``(line number, row)`` for every data row, with the needed columns checked."""
    if not table.exists():
        raise DataNotFoundError(f"no CSV file at {name}")
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        with table.open(newline="", encoding="utf-8-sig") as stream:
            reader = csv.DictReader(stream)
            header = reader.fieldnames or []
            missing = [column for column in columns if column not in header]
            if missing:
                raise DataFileError(
                    f"{name} has no column {', '.join(map(repr, missing))}; its header row "
                    f"has {header}"
                )
            rows.extend(
                (reader.line_num, _checked_row(row, columns, name, reader.line_num))
                for row in reader
            )
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataFileError(f"{name} is not a readable UTF-8 CSV file: {error}") from error
    if not rows:
        raise DataFileError(f"{name} has a header row but no data rows")
    return rows


def _checked_row(
    row: dict[str | None, str | list[str] | None], columns: list[str], name: str, line: int
) -> dict[str, str]:
    values: dict[str, str] = {}
    for column in columns:
        value = row.get(column)
        if not isinstance(value, str) or not value.strip():
            raise DataFileError(f"{name}, line {line}: the {column!r} column is empty")
        values[column] = value.strip()
    return values


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True

"""MNIST, bundled inside the package and checked against the original files' sha256."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import ChecksumError, DataNotFoundError, InvalidInputError, MissingDependencyError
from ..io.idx import parse_idx, read_idx_bytes
from .dataset import ImageDataset

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

__all__ = ["MNIST_CLASSES", "load_mnist"]

#: The class names of MNIST, in label order.
MNIST_CLASSES: tuple[str, ...] = tuple("0123456789")

_MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# sha256 of the decompressed original files (yann.lecun.com); the .gz wrappers vary.
_MNIST_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


def _bundled_root() -> Traversable:
    return resources.files("digitrec") / "_data"


def _find_mnist_file(root: Path, name: str) -> Path | None:
    for folder in (root, root / "MNIST" / "raw"):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _read_verified(path: Path, name: str, *, bundled: bool) -> np.ndarray[Any, Any]:
    data = read_idx_bytes(path)
    digest = hashlib.sha256(data).hexdigest()
    if digest != _MNIST_SHA256[name]:
        if bundled:
            raise ChecksumError(
                f"the bundled MNIST file {name} is corrupt (sha256 {digest}, expected "
                f"{_MNIST_SHA256[name]}); reinstall digitrec with "
                "'pip install --force-reinstall --no-deps digitrec'"
            )
        raise ChecksumError(
            f"{str(path)!r} is not the original MNIST {name} (sha256 {digest}, expected "
            f"{_MNIST_SHA256[name]}); for other IDX data use ImageDataset.from_idx"
        )
    return parse_idx(data)


def _download_with_torchvision(root: Path, split: str) -> None:
    if importlib.util.find_spec("torchvision") is None:
        raise MissingDependencyError(
            "load_mnist(download=True) needs torchvision: pip install 'digitrec[vision]'. "
            "Offline, use the copy bundled with digitrec (load_mnist(split) with root=None), "
            "or put the four MNIST IDX files in a folder and pass it as root"
        )
    datasets: Any = importlib.import_module("torchvision.datasets")
    datasets.MNIST(str(root), train=split == "train", download=True)


def load_mnist(
    split: Literal["train", "test"],
    *,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> ImageDataset:
    """Load MNIST's training (60,000 images) or test (10,000 images) split.

    Args:
        split: ``"train"`` or ``"test"``.
        root: ``None`` reads the copy bundled with digitrec, so no network is
            needed. A folder reads the IDX files there, gzipped or not, either
            directly in it or in torchvision's ``root/MNIST/raw`` layout.
        download: With a ``root``, fetch missing files with torchvision (the
            ``vision`` extra) into it first.

    Returns:
        The split with ``class_names`` ``("0", ..., "9")``; every file is checked
        against the sha256 of the original MNIST release.

    Raises:
        InvalidInputError: For an unknown split, or ``download=True`` without a root.
        DataNotFoundError: If ``root`` lacks the files and ``download`` is off.
        ChecksumError: If a file is not the original MNIST file.
        MissingDependencyError: If ``download=True`` and torchvision is missing.

    Example:
        >>> test = digitrec.load_mnist("test")
        >>> len(test), test.images.dtype, test.image_shape
        (10000, torch.uint8, (1, 28, 28))
    """
    if split not in _MNIST_FILES:
        raise InvalidInputError(f"split must be 'train' or 'test', got {split!r}")
    names = _MNIST_FILES[split]
    if root is None:
        if download:
            raise InvalidInputError(
                "download=True needs a root folder to download into; "
                "root=None reads the bundled copy, which needs no download"
            )
        bundled = _bundled_root()
        arrays = []
        for name in names:
            with resources.as_file(bundled / f"{name}.gz") as path:
                arrays.append(_read_verified(path, name, bundled=True))
        data = ImageDataset._from_idx_arrays(arrays[0], arrays[1], "bundled MNIST", MNIST_CLASSES)
        data._framing = "mnist"
        return data

    folder = Path(root).expanduser()
    if download and not all(_find_mnist_file(folder, name) for name in names):
        _download_with_torchvision(folder, split)
    paths: list[Path] = []
    for name in names:
        found = _find_mnist_file(folder, name)
        if found is None:
            raise DataNotFoundError(
                f"MNIST file {name} not found in {str(folder)!r} or "
                f"{str(folder / 'MNIST' / 'raw')!r} (with or without .gz). Use the bundled copy "
                "with root=None, copy the files there, or pass download=True with torchvision "
                "installed"
            )
        paths.append(found)
    images, labels = (
        _read_verified(path, name, bundled=False) for path, name in zip(paths, names, strict=True)
    )
    data = ImageDataset._from_idx_arrays(images, labels, str(paths[0]), MNIST_CLASSES)
    data._framing = "mnist"
    return data

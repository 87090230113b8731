"""Image data sets: the :class:`ImageDataset` container and the readers that fill it.

Everything here works from local files. :func:`load_mnist` reads a copy of MNIST
bundled inside the package, checked against the checksums of the original
files, so digitrec works on machines without network access.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import importlib.util
import os
import sys
import zlib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import torch

from . import _images

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

from .errors import (
    ChecksumError,
    DataFileError,
    DataNotFoundError,
    InvalidInputError,
    InvalidTypeError,
    MissingDependencyError,
)

__all__ = ["MNIST_CLASSES", "ImageDataset", "load_mnist"]

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

_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# Deflate cannot expand data by more than about 1032:1; a header that claims more
# than that is lying, and believing it would allocate memory the file cannot fill.
_MAX_DEFLATE_RATIO = 1100
_GZIP_MAGIC = b"\x1f\x8b"
_NPZ_SPLITS = ("train", "val", "test")


def _read_idx_bytes(path: Path) -> bytes:
    """Return the decompressed bytes of an IDX file after checking its header against its size."""
    if not path.is_file():
        raise DataNotFoundError(f"no IDX file at {str(path)!r}")
    file_size = path.stat().st_size
    with path.open("rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
    try:
        with gzip.open(path, "rb") if compressed else path.open("rb") as stream:
            header = stream.read(4)
            if len(header) < 4 or header[:2] != b"\x00\x00" or header[2] not in _IDX_DTYPES:
                raise DataFileError(
                    f"{str(path)!r} is not an IDX file: expected a magic number 00 00 <type> "
                    f"<ndim> with type in {sorted(_IDX_DTYPES)}, "
                    f"got {header.hex(' ') or 'an empty file'}"
                )
            ndim = header[3]
            dims_bytes = stream.read(4 * ndim)
            if ndim == 0 or len(dims_bytes) < 4 * ndim:
                raise DataFileError(
                    f"{str(path)!r} is a truncated IDX file: the header announces {ndim} "
                    f"dimensions but {len(dims_bytes) // 4} follow"
                )
            dims = np.frombuffer(dims_bytes, dtype=">u4").astype(np.int64)
            if not bool((dims > 0).all()):
                raise DataFileError(
                    f"{str(path)!r} announces shape {tuple(int(d) for d in dims)}: every "
                    "dimension of an IDX file must be at least 1"
                )
            expected = int(np.prod(dims, dtype=object)) * _IDX_DTYPES[header[2]].itemsize
            limit = file_size * _MAX_DEFLATE_RATIO if compressed else file_size - 4 - 4 * ndim
            if expected > limit:
                raise DataFileError(
                    f"{str(path)!r}: the header announces shape {tuple(int(d) for d in dims)} "
                    f"({expected:,} bytes of data) but the file holds at most {max(limit, 0):,}; "
                    "it is truncated or corrupt"
                )
            payload = stream.read(expected + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise DataFileError(f"{str(path)!r} is not a readable IDX file: {error}") from error
    if len(payload) != expected:
        problem = "has trailing bytes" if len(payload) > expected else "is truncated"
        raise DataFileError(
            f"{str(path)!r} {problem}: the header announces {expected:,} bytes of data, "
            f"{'more' if len(payload) > expected else len(payload)} follow"
        )
    return header + dims_bytes + payload


def _parse_idx(data: bytes) -> np.ndarray[Any, Any]:
    """Parse IDX bytes already checked by :func:`_read_idx_bytes` into a native-endian array."""
    dtype = _IDX_DTYPES[data[2]]
    ndim = data[3]
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    array = np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=True)


def _labels_tensor(labels: Any) -> torch.Tensor:
    tensor: torch.Tensor
    if isinstance(labels, np.ndarray):
        if labels.dtype == object:
            raise InvalidTypeError("labels must hold integers, got a numpy array of dtype object")
        tensor = torch.from_numpy(np.array(labels, dtype=labels.dtype.newbyteorder("="), copy=True))
    elif isinstance(labels, torch.Tensor):
        tensor = labels.detach().cpu()
    else:
        raise InvalidTypeError(
            f"labels must be a torch.Tensor or numpy.ndarray, got {type(labels).__name__}"
        )
    if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
        raise InvalidTypeError(f"labels must be integers, got dtype {tensor.dtype}")
    if tensor.dim() == 2 and tensor.shape[1] == 1:
        tensor = tensor[:, 0]
    if tensor.dim() != 1:
        raise InvalidInputError(
            f"labels must have shape (N,) or (N, 1), got shape {tuple(tensor.shape)}"
        )
    return tensor.to(torch.int64).contiguous()


class ImageDataset:
    """Images and their integer labels, held in memory as tensors.

    Images are ``uint8`` pixels in ``(N, C, H, W)`` layout with ``C`` 1 or 3, labels
    are ``int64`` class indices. Indexing with an integer gives one ``(image,
    label)`` pair, so the data set works with :class:`torch.utils.data.DataLoader`;
    indexing with a slice, a sequence of indices or a boolean mask gives a new
    ``ImageDataset``.

    Args:
        images: ``uint8`` tensor of shape ``(N, C, H, W)``. Use :meth:`from_arrays`
            for other layouts, dtypes or numpy arrays.
        labels: ``int64`` tensor of shape ``(N,)`` with values in ``[0, num_classes)``.
        class_names: Optional names of the classes, in label order.

    Raises:
        InvalidTypeError: If ``images`` or ``labels`` have the wrong type or dtype.
        InvalidInputError: If shapes disagree, labels are negative, or a label has
            no class name.

    Example:
        >>> import torch
        >>> data = digitrec.ImageDataset(torch.zeros(4, 1, 28, 28, dtype=torch.uint8),
        ...                              torch.tensor([0, 1, 2, 1]))
        >>> len(data), data.image_shape, data.num_classes
        (4, (1, 28, 28), 3)
    """

    __slots__ = ("_class_names", "_images", "_labels")

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        class_names: Sequence[str] | None = None,
    ) -> None:
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
            got = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
            raise InvalidTypeError(
                f"images must be a uint8 torch.Tensor, got {got}; "
                "use ImageDataset.from_arrays for numpy arrays, floats or other layouts"
            )
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise InvalidInputError(
                f"images must have shape (N, C, H, W) with C 1 or 3, got {tuple(images.shape)}"
            )
        if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64:
            got = labels.dtype if isinstance(labels, torch.Tensor) else type(labels).__name__
            raise InvalidTypeError(f"labels must be an int64 torch.Tensor, got {got}")
        if labels.dim() != 1 or labels.shape[0] != images.shape[0]:
            raise InvalidInputError(
                f"labels must have shape ({images.shape[0]},) to match {images.shape[0]} images, "
                f"got {tuple(labels.shape)}"
            )
        if labels.numel() and int(labels.min()) < 0:
            raise InvalidInputError(f"labels must be >= 0, got {int(labels.min())}")
        names: tuple[str, ...] | None = None
        if class_names is not None:
            names = tuple(class_names)
            if not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
                raise InvalidInputError(f"class_names must be distinct strings, got {names!r}")
            if labels.numel() and int(labels.max()) >= len(names):
                raise InvalidInputError(
                    f"labels must be < {len(names)} (the number of class_names), "
                    f"got {int(labels.max())}"
                )
        self._images = images
        self._labels = labels
        self._class_names = names

    @classmethod
    def from_arrays(
        cls,
        images: Any,
        labels: Any,
        *,
        class_names: Sequence[str] | None = None,
    ) -> ImageDataset:
        """Build a data set from numpy arrays or torch tensors.

        Args:
            images: Pixels of shape ``(N, H, W)``, ``(N, C, H, W)`` or ``(N, H, W, C)``
                with ``C`` 1 or 3; ``uint8`` (0-255) or floating point (0-1, stored
                rounded to ``uint8``). A shape that fits both 4-D layouts is read
                channels-first.
            labels: Integer labels of shape ``(N,)`` or ``(N, 1)``.
            class_names: Optional names of the classes, in label order.

        Returns:
            A new data set holding copies of the arrays.

        Raises:
            InvalidTypeError: For non-array inputs or unsupported dtypes.
            InvalidInputError: For unsupported shapes, pixels outside the range of
                their dtype, or labels that do not match the images.

        Example:
            >>> import numpy as np
            >>> data = digitrec.ImageDataset.from_arrays(
            ...     np.random.rand(8, 28, 28), np.arange(8) % 2, class_names=["no", "yes"])
            >>> data.images.dtype, data.image_shape, data.class_names
            (torch.uint8, (1, 28, 28), ('no', 'yes'))
        """
        batch = _images.to_uint8(_images.as_image_batch(images, "images")).cpu()
        return cls(batch, _labels_tensor(labels), class_names)

    @classmethod
    def from_idx(
        cls,
        images_path: str | os.PathLike[str],
        labels_path: str | os.PathLike[str],
        *,
        class_names: Sequence[str] | None = None,
    ) -> ImageDataset:
        """Read a pair of IDX files (MNIST, Fashion-MNIST, EMNIST and kin), gzipped or not.

        Args:
            images_path: IDX file of ``uint8`` images, shape ``(N, H, W)``.
            labels_path: IDX file of integer labels, shape ``(N,)``.
            class_names: Optional names of the classes, in label order.

        Returns:
            The data set.

        Raises:
            DataNotFoundError: If a file does not exist.
            DataFileError: If a file is not a well-formed IDX file.
            InvalidInputError: If the two files do not describe the same images.

        Example:
            >>> from importlib.resources import files
            >>> root = files("digitrec") / "_data"  # the bundled MNIST; any IDX pair works
            >>> data = digitrec.ImageDataset.from_idx(
            ...     root / "t10k-images-idx3-ubyte.gz", root / "t10k-labels-idx1-ubyte.gz")
            >>> len(data)
            10000
        """
        images = _parse_idx(_read_idx_bytes(Path(images_path)))
        labels = _parse_idx(_read_idx_bytes(Path(labels_path)))
        return cls._from_idx_arrays(images, labels, str(images_path), class_names)

    @classmethod
    def from_npz(
        cls,
        path: str | os.PathLike[str],
        split: Literal["train", "val", "test"],
        *,
        class_names: Sequence[str] | None = None,
    ) -> ImageDataset:
        """Read one split of a MedMNIST-style ``.npz`` file.

        The file holds ``{split}_images`` (``(N, H, W)`` grayscale or ``(N, H, W, 3)``
        RGB, ``uint8``) and ``{split}_labels`` (``(N, 1)`` or ``(N,)`` integers), as
        MedMNIST ships them. Nothing is unpickled: object arrays are refused.

        Args:
            path: The ``.npz`` file, e.g. ``pneumoniamnist.npz`` from the medmnist package.
            split: ``"train"``, ``"val"`` or ``"test"``.
            class_names: Optional names of the classes, in label order.

        Returns:
            The split as a data set.

        Raises:
            InvalidInputError: For an unknown split name.
            DataNotFoundError: If the file does not exist.
            DataFileError: If the file is not a readable ``.npz``, lacks the split's
                arrays, or holds object arrays.

        Example:
            >>> import numpy as np, tempfile, os
            >>> path = os.path.join(tempfile.mkdtemp(), "tiny.npz")
            >>> np.savez(path, test_images=np.zeros((3, 28, 28), np.uint8),
            ...          test_labels=np.array([[0], [1], [1]]))
            >>> data = digitrec.ImageDataset.from_npz(path, "test", class_names=["normal", "ill"])
            >>> len(data), data.labels.tolist()
            (3, [0, 1, 1])
        """
        if split not in _NPZ_SPLITS:
            raise InvalidInputError(f"split must be one of {_NPZ_SPLITS}, got {split!r}")
        file = Path(path).expanduser()
        if not file.is_file():
            raise DataNotFoundError(f"no .npz file at {str(file)!r}")
        keys = (f"{split}_images", f"{split}_labels")
        try:
            loaded = np.load(file, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                # A bare .npy array: np.load returns the array itself, not an archive.
                raise DataFileError(
                    f"{str(file)!r} holds a single numpy array, not an .npz archive with "
                    f"{keys[0]!r} and {keys[1]!r}"
                )
            with loaded as archive:
                missing = [key for key in keys if key not in archive.files]
                if missing:
                    raise DataFileError(
                        f"{str(file)!r} has no {missing} for split {split!r}; "
                        f"it holds {sorted(archive.files)}"
                    )
                images, labels = archive[keys[0]], archive[keys[1]]
        except DataFileError:
            raise
        except Exception as error:
            # Untrusted archives fail in many ways (BadZipFile, NotImplementedError for
            # unknown zip versions, RuntimeError for encrypted members, zlib and struct
            # errors, and ValueError for object arrays under allow_pickle=False): each
            # means the file is not a usable .npz.
            raise DataFileError(
                f"{str(file)!r} is not a readable .npz of arrays: {type(error).__name__}: {error}"
            ) from error
        return cls.from_arrays(images, labels, class_names=class_names)

    @classmethod
    def _from_idx_arrays(
        cls,
        images: np.ndarray[Any, Any],
        labels: np.ndarray[Any, Any],
        source: str,
        class_names: Sequence[str] | None,
    ) -> ImageDataset:
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataFileError(
                f"{source!r} must hold uint8 images of shape (N, H, W), "
                f"got {images.dtype} of shape {images.shape}"
            )
        if labels.shape[0] != images.shape[0]:
            raise InvalidInputError(
                f"the images file holds {images.shape[0]} images but the labels file "
                f"{labels.shape[0]} labels"
            )
        return cls(torch.from_numpy(images).unsqueeze(1), _labels_tensor(labels), class_names)

    @property
    def images(self) -> torch.Tensor:
        """``uint8`` pixels, shape ``(N, C, H, W)``."""
        return self._images

    @property
    def labels(self) -> torch.Tensor:
        """``int64`` class indices, shape ``(N,)``."""
        return self._labels

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """Names of the classes in label order, or ``None`` when unknown."""
        return self._class_names

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The ``(C, H, W)`` shape of one image."""
        _, channels, height, width = self._images.shape
        return (channels, height, width)

    @property
    def num_classes(self) -> int:
        """The number of class names if known, else one more than the largest label."""
        if self._class_names is not None:
            return len(self._class_names)
        return int(self._labels.max()) + 1 if self._labels.numel() else 0

    def __len__(self) -> int:
        return int(self._labels.shape[0])

    @overload
    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]: ...

    @overload
    def __getitem__(self, index: slice | Sequence[int] | torch.Tensor) -> ImageDataset: ...

    def __getitem__(
        self, index: int | slice | Sequence[int] | torch.Tensor
    ) -> tuple[torch.Tensor, int] | ImageDataset:
        if isinstance(index, (int, np.integer)):
            position = int(index)
            if not -len(self) <= position < len(self):
                raise IndexError(f"index {position} is out of range for {len(self)} images")
            return self._images[position], int(self._labels[position])
        if isinstance(index, slice):
            selected: slice | torch.Tensor = index
        else:
            selected = torch.as_tensor(index)
            if selected.dtype != torch.bool:
                selected = selected.to(torch.int64)
        return ImageDataset(self._images[selected], self._labels[selected], self._class_names)

    def split(
        self, val_size: float | int = 0.1, *, seed: int = 0
    ) -> tuple[ImageDataset, ImageDataset]:
        """Split off a random validation part, repeatably.

        Args:
            val_size: The validation part's size, as a fraction in ``(0, 1)`` or a
                count in ``[1, len(self) - 1]``.
            seed: Seed of the random permutation; the same seed gives the same split.

        Returns:
            ``(train, val)``, disjoint and together holding every image once.

        Raises:
            InvalidInputError: If ``val_size`` leaves either part empty.

        Example:
            >>> train, val = digitrec.load_mnist("train").split(10_000, seed=0)
            >>> len(train), len(val)
            (50000, 10000)
        """
        total = len(self)
        if isinstance(val_size, bool) or not isinstance(val_size, (int, float)):
            raise InvalidTypeError(
                f"val_size must be an int or float, got {type(val_size).__name__}"
            )
        count = round(val_size * total) if isinstance(val_size, float) else val_size
        if (isinstance(val_size, float) and not 0.0 < val_size < 1.0) or not 1 <= count < total:
            raise InvalidInputError(
                f"val_size must leave both parts non-empty: a fraction in (0, 1) or a count in "
                f"[1, {total - 1}] for {total} images, got {val_size!r}"
            )
        order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
        return self[order[count:].sort().values], self[order[:count].sort().values]

    def __repr__(self) -> str:
        names = f", class_names={list(self._class_names)!r}" if self._class_names else ""
        return f"ImageDataset(n={len(self)}, image_shape={self.image_shape}{names})"


def _bundled_root() -> Traversable:
    return resources.files("digitrec") / "_data"


def _find_mnist_file(root: Path, name: str) -> Path | None:
    for folder in (root, root / "MNIST" / "raw"):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _read_verified(path: Path, name: str, *, bundled: bool) -> np.ndarray[Any, Any]:
    data = _read_idx_bytes(path)
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
    return _parse_idx(data)


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
        return ImageDataset._from_idx_arrays(arrays[0], arrays[1], "bundled MNIST", MNIST_CLASSES)

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
    return ImageDataset._from_idx_arrays(images, labels, str(paths[0]), MNIST_CLASSES)

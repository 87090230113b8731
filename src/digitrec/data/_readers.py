"""The constructors of :class:`~digitrec.ImageDataset` that read files (a mixin it inherits)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
import torch

from ..errors import DataFileError, InvalidInputError, InvalidTypeError
from ..io.folders import scan_csv, scan_folder
from ..io.idx import read_idx
from ..io.npz import NPZ_SPLITS, read_npz_split
from ..preprocessing import ResizeMode
from ._from_files import Color, OnError, csv_column, read_labelled_images

_D = TypeVar("_D", bound="FileConstructors")


def labels_tensor(labels: Any) -> torch.Tensor:
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
    if tensor.dim() not in (1, 2):
        raise InvalidInputError(
            f"labels must have shape (N,) or (N, 1), or (N, L) for multi-label data, "
            f"got shape {tuple(tensor.shape)}"
        )
    return tensor.to(torch.int64).contiguous()


def check_label_shape(labels: torch.Tensor, count: int) -> None:
    """Check ``(N,)`` class indices >= 0, or ``(N, L)`` multi-label 0/1 indicators."""
    if labels.dim() not in (1, 2) or labels.shape[0] != count:
        raise InvalidInputError(
            f"labels must have shape ({count},) to match {count} images (or ({count}, L) "
            f"for multi-label data), got {tuple(labels.shape)}"
        )
    if labels.dim() == 2 and labels.numel() and (int(labels.min()) < 0 or int(labels.max()) > 1):
        raise InvalidInputError(
            f"multi-label labels must be 0 or 1, got values from {int(labels.min())} "
            f"to {int(labels.max())}"
        )
    if labels.numel() and int(labels.min()) < 0:
        raise InvalidInputError(f"labels must be >= 0, got {int(labels.min())}")


class FileConstructors:
    """``from_idx``, ``from_npz``, ``from_folder`` and ``from_csv`` of :class:`ImageDataset`."""

    __slots__ = ()

    if TYPE_CHECKING:

        def __init__(
            self,
            images: torch.Tensor,
            labels: torch.Tensor,
            class_names: Sequence[str] | None = None,
            *,
            groups: Any = None,
        ) -> None: ...

        @classmethod
        def from_arrays(
            cls: type[_D],
            images: Any,
            labels: Any,
            *,
            class_names: Sequence[str] | None = None,
            groups: Any = None,
        ) -> _D: ...

    @classmethod
    def from_idx(
        cls: type[_D],
        images_path: str | os.PathLike[str],
        labels_path: str | os.PathLike[str],
        *,
        class_names: Sequence[str] | None = None,
    ) -> _D:
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
        images = read_idx(Path(images_path))
        labels = read_idx(Path(labels_path))
        return cls._from_idx_arrays(images, labels, str(images_path), class_names)

    @classmethod
    def from_npz(
        cls: type[_D],
        path: str | os.PathLike[str],
        split: Literal["train", "val", "test"],
        *,
        class_names: Sequence[str] | None = None,
    ) -> _D:
        """Read one split of a MedMNIST-style ``.npz`` file.

        The file holds ``{split}_images`` (``(N, H, W)`` grayscale or ``(N, H, W, 3)``
        RGB, ``uint8``) and ``{split}_labels`` (``(N, 1)`` or ``(N,)`` integers, or
        ``(N, L)`` 0/1 indicators for multi-label sets such as ChestMNIST's 14
        findings), as MedMNIST ships them. Nothing is unpickled: object arrays are refused.

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
        if split not in NPZ_SPLITS:
            raise InvalidInputError(f"split must be one of {NPZ_SPLITS}, got {split!r}")
        images, labels = read_npz_split(Path(path), split)
        return cls.from_arrays(images, labels, class_names=class_names)

    @classmethod
    def from_folder(
        cls: type[_D],
        root: str | os.PathLike[str],
        *,
        size: int | tuple[int, int] | None = None,
        resize: ResizeMode = "pad",
        color: Color = "gray",
        on_error: OnError = "raise",
        progress: bool = False,
    ) -> _D:
        """Read a folder with one sub-folder of images per class, as torchvision's ImageFolder.

        Class names are the sub-folders' names, sorted; every file
        :func:`~digitrec.read_image` reads is taken (DICOM with the ``dicom``
        extra), 16-bit ones scaled to 0-1, then stored as ``uint8``.

        Args:
            root: The folder (``root/<class>/<image>``, sub-folders allowed).
            size: ``S`` or ``(height, width)`` to bring every image to; ``None``
                requires all images to have one size already.
            resize: ``"pad"`` keeps each image's aspect ratio and pads with its
                border colour; ``"stretch"`` fills the size exactly.
            color: ``"gray"`` (luminance) or ``"rgb"``.
            on_error: ``"raise"`` reports every unreadable file at once in one
                :class:`~digitrec.DataFileError`; ``"skip"`` leaves them out with
                a warning that counts and names them.
            progress: Show a progress bar while reading (needs tqdm).

        Returns:
            The data set, with the class names.

        Raises:
            DataNotFoundError: If ``root`` does not exist.
            DataFileError: If the layout is wrong or files cannot be read.
            InvalidInputError: For invalid arguments, or images of several sizes
                without ``size``.

        Example:
            >>> import tempfile, pathlib, numpy as np
            >>> root = pathlib.Path(tempfile.mkdtemp())
            >>> for name in ("cat", "dog"):
            ...     (root / name).mkdir()
            ...     np.save(root / name / "a.npy", np.zeros((30, 20), np.uint8))
            >>> data = digitrec.ImageDataset.from_folder(root, size=16)
            >>> data.class_names, data.image_shape, data.labels.tolist()
            (('cat', 'dog'), (1, 16, 16), [0, 1])
        """
        listed = scan_folder(root)
        images, labels, _ = read_labelled_images(
            listed.paths,
            listed.labels,
            size=size,
            resize=resize,
            color=color,
            on_error=on_error,
            progress=progress,
        )
        return cls(images, labels, listed.class_names)

    @classmethod
    def from_csv(
        cls: type[_D],
        path: str | os.PathLike[str],
        *,
        file_column: str = "file",
        label_column: str = "label",
        split_column: str | None = None,
        split: str | None = None,
        group_column: str | None = None,
        size: int | tuple[int, int] | None = None,
        resize: ResizeMode = "pad",
        color: Color = "gray",
        on_error: OnError = "raise",
        progress: bool = False,
    ) -> _D:
        """Read the image files and labels a CSV file lists, optionally one split of them.

        Paths in the file column are relative to the CSV file's folder (or
        absolute). Labels are integers, or names that become the class names
        (sorted, over all rows, so every split numbers them alike).

        Args:
            path: The CSV file, with a header row.
            file_column: The column of file paths.
            label_column: The column of labels.
            split_column: A column naming each row's split (e.g. ``train``/``test``).
            split: The split to read; needs ``split_column``.
            group_column: A column of patient or study identifiers: the data
                set's :attr:`~ImageDataset.groups`, which keep one patient's
                images on one side of :func:`~digitrec.data.group_split` and
                :func:`~digitrec.data.kfold`.
            size: As for :meth:`from_folder`.
            resize: As for :meth:`from_folder`.
            color: As for :meth:`from_folder`.
            on_error: As for :meth:`from_folder`.
            progress: As for :meth:`from_folder`.

        Returns:
            The data set, with the class names.

        Raises:
            DataNotFoundError: If the CSV file does not exist.
            DataFileError: For missing columns, bad rows (named by line) or
                unreadable files.
            InvalidInputError: For invalid arguments.

        Example:
            >>> import tempfile, pathlib, numpy as np
            >>> root = pathlib.Path(tempfile.mkdtemp())
            >>> np.save(root / "a.npy", np.zeros((8, 8), np.uint8))
            >>> np.save(root / "b.npy", np.full((8, 8), 255, np.uint8))
            >>> rows = ["file,label,fold,patient", "a.npy,no,train,p1", "b.npy,yes,test,p2"]
            >>> _ = (root / "list.csv").write_text(chr(10).join(rows))
            >>> test = digitrec.ImageDataset.from_csv(
            ...     root / "list.csv", split_column="fold", split="test", group_column="patient")
            >>> test.class_names, test.labels.tolist(), int(test.images.max())
            (('no', 'yes'), [1], 255)
            >>> test.groups.tolist()
            ['p2']
        """
        listed = scan_csv(
            path,
            file_column=file_column,
            label_column=label_column,
            split_column=split_column,
            split=split,
        )
        groups = (
            None
            if group_column is None
            else csv_column(path, group_column, split_column=split_column, split=split)
        )
        images, labels, kept = read_labelled_images(
            listed.paths,
            listed.labels,
            size=size,
            resize=resize,
            color=color,
            on_error=on_error,
            progress=progress,
        )
        kept_groups = None if groups is None else [groups[index] for index in kept]
        return cls(images, labels, listed.class_names, groups=kept_groups)

    @classmethod
    def _from_idx_arrays(
        cls: type[_D],
        images: np.ndarray[Any, Any],
        labels: np.ndarray[Any, Any],
        source: str,
        class_names: Sequence[str] | None,
    ) -> _D:
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
        return cls(torch.from_numpy(images).unsqueeze(1), labels_tensor(labels), class_names)

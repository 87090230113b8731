"""The data set container: :class:`ImageDataset`, its indexing and seeded splits."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Literal, overload

import numpy as np
import torch

from .. import _images
from .._checks import check_int
from ..errors import InvalidInputError, InvalidTypeError
from ._groups import groups_array
from ._readers import FileConstructors, check_label_shape, labels_tensor

__all__ = ["Framing", "ImageDataset", "dataset_sha256"]

#: How a data set's images are framed: ``"mnist"`` is MNIST's (white digits on
#: black, fitted to 20x20 and centred by centre of mass in 28x28).
Framing = Literal["mnist"]


class ImageDataset(FileConstructors):
    """Images and their integer labels, held in memory as tensors.

    Images are ``uint8`` pixels in ``(N, C, H, W)`` layout with ``C`` 1 or 3, labels
    are ``int64`` class indices ``(N,)``, or for multi-label data (several
    findings per image, as ChestMNIST's 14) ``int64`` 0/1 indicators ``(N, L)``.
    Indexing with an integer gives one ``(image, label)`` pair (the label an
    ``int``, or an ``(L,)`` tensor for multi-label data), so the data set works
    with :class:`torch.utils.data.DataLoader`;
    indexing with a slice, a sequence of indices or a boolean mask gives a new
    ``ImageDataset``.

    Args:
        images: ``uint8`` tensor of shape ``(N, C, H, W)``. Use :meth:`from_arrays`
            for other layouts, dtypes or numpy arrays.
        labels: ``int64`` tensor of shape ``(N,)`` with values in ``[0, num_classes)``,
            or ``(N, L)`` of 0 and 1 for multi-label data.
        class_names: Optional names of the classes (of the ``L`` labels), in order.
        groups: Optional identifier of each image's patient, study or other unit
            whose images must stay together (strings or integers, one per
            image); kept through indexing and splits, so
            :func:`~digitrec.data.group_split` and :func:`~digitrec.data.kfold`
            never put one group on both sides.

    Raises:
        InvalidTypeError: If ``images``, ``labels`` or ``groups`` have the wrong
            type or dtype.
        InvalidInputError: If shapes disagree, labels are negative, or a label has
            no class name.

    Example:
        >>> import torch
        >>> data = digitrec.ImageDataset(torch.zeros(4, 1, 28, 28, dtype=torch.uint8),
        ...                              torch.tensor([0, 1, 2, 1]))
        >>> len(data), data.image_shape, data.num_classes
        (4, (1, 28, 28), 3)
    """

    __slots__ = ("_class_names", "_framing", "_groups", "_images", "_labels")

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        class_names: Sequence[str] | None = None,
        *,
        groups: Any = None,
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
        check_label_shape(labels, images.shape[0])
        names: tuple[str, ...] | None = None
        if class_names is not None:
            names = tuple(class_names)
            if not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
                raise InvalidInputError(f"class_names must be distinct strings, got {names!r}")
            if labels.dim() == 2 and labels.shape[1] != len(names):
                raise InvalidInputError(
                    f"class_names must name each of the {labels.shape[1]} labels, "
                    f"got {len(names)} names"
                )
            if labels.dim() == 1 and labels.numel() and int(labels.max()) >= len(names):
                raise InvalidInputError(
                    f"labels must be < {len(names)} (the number of class_names), "
                    f"got {int(labels.max())}"
                )
        self._images = images
        self._labels = labels
        self._class_names = names
        self._framing: Framing | None = None
        self._groups = None if groups is None else groups_array(groups, len(labels))

    @classmethod
    def from_arrays(
        cls,
        images: Any,
        labels: Any,
        *,
        class_names: Sequence[str] | None = None,
        groups: Any = None,
    ) -> ImageDataset:
        """Build a data set from numpy arrays or torch tensors.

        Args:
            images: Pixels of shape ``(N, H, W)``, ``(N, C, H, W)`` or ``(N, H, W, C)``
                with ``C`` 1 or 3; ``uint8`` (0-255) or floating point (0-1, stored
                rounded to ``uint8``). A shape that fits both 4-D layouts is read
                channels-first.
            labels: Integer labels of shape ``(N,)`` or ``(N, 1)``, or 0/1
                indicators ``(N, L)`` for multi-label data.
            class_names: Optional names of the classes, in label order.
            groups: Optional patient or study identifier of each image (see
                :class:`ImageDataset`).

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
        return cls(batch, labels_tensor(labels), class_names, groups=groups)

    def with_groups(self, groups: Any) -> ImageDataset:
        """Return the same images and labels with a patient or study identifier per image.

        Args:
            groups: One identifier per image: a sequence, numpy array or tensor of
                strings or integers. ``None`` removes the groups.

        Returns:
            A new data set sharing this one's pixels and labels.

        Raises:
            InvalidTypeError: If the identifiers are not strings or integers.
            InvalidInputError: If there is not one identifier per image.

        Example:
            >>> data = digitrec.ImageDataset(torch.zeros(4, 1, 8, 8, dtype=torch.uint8),
            ...                              torch.tensor([0, 1, 0, 1]))
            >>> data.with_groups(["p1", "p1", "p2", "p3"])[1:].groups.tolist()
            ['p1', 'p2', 'p3']
        """
        part = ImageDataset(self._images, self._labels, self._class_names, groups=groups)
        part._framing = self._framing
        return part

    @property
    def groups(self) -> np.ndarray[Any, Any] | None:
        """The read-only patient or study identifier of each image, or ``None``.

        Example:
            >>> data = digitrec.ImageDataset.from_arrays(
            ...     np.zeros((3, 8, 8), np.uint8), np.array([0, 1, 1]), groups=[7, 7, 9])
            >>> data.groups.tolist(), data[[2]].groups.tolist()
            ([7, 7, 9], [9])
        """
        return self._groups

    @property
    def framing(self) -> Framing | None:
        """``"mnist"`` for digits in MNIST's framing (bundled MNIST), else ``None``.

        A model trained on such data records that raw inputs are to be prepared as
        digits (:func:`~digitrec.prepare_digits`) before it sees them.

        Example:
            >>> digitrec.load_mnist("test")[:10].framing
            'mnist'
        """
        return self._framing

    @property
    def images(self) -> torch.Tensor:
        """``uint8`` pixels, shape ``(N, C, H, W)``."""
        return self._images

    @property
    def labels(self) -> torch.Tensor:
        """``int64`` class indices ``(N,)``, or 0/1 indicators ``(N, L)`` for multi-label data."""
        return self._labels

    @property
    def multilabel(self) -> bool:
        """Whether each image has ``L`` 0/1 labels (``labels`` of shape ``(N, L)``).

        Example:
            >>> digitrec.ImageDataset.from_arrays(
            ...     np.zeros((2, 8, 8), np.uint8), np.array([[1, 0, 1], [0, 0, 0]])).multilabel
            True
        """
        return self._labels.dim() == 2

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
        """The number of class names if known, else one more than the largest label.

        For multi-label data, the number of labels ``L``.
        """
        if self._class_names is not None:
            return len(self._class_names)
        if self.multilabel:
            return int(self._labels.shape[1])
        return int(self._labels.max()) + 1 if self._labels.numel() else 0

    def __len__(self) -> int:
        return int(self._labels.shape[0])

    @overload
    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]: ...

    @overload
    def __getitem__(self, index: slice | Sequence[int] | torch.Tensor) -> ImageDataset: ...

    def __getitem__(
        self, index: int | slice | Sequence[int] | torch.Tensor
    ) -> tuple[torch.Tensor, Any] | ImageDataset:
        if isinstance(index, (int, np.integer)):
            position = int(index)
            if not -len(self) <= position < len(self):
                raise IndexError(f"index {position} is out of range for {len(self)} images")
            label = self._labels[position]
            return self._images[position], label if self.multilabel else int(label)
        if isinstance(index, slice):
            selected: slice | torch.Tensor = index
        else:
            selected = torch.as_tensor(index)
            if selected.dtype != torch.bool:
                selected = selected.to(torch.int64)
        groups = None
        if self._groups is not None:
            groups = self._groups[selected if isinstance(selected, slice) else selected.numpy()]
        part = ImageDataset(
            self._images[selected], self._labels[selected], self._class_names, groups=groups
        )
        part._framing = self._framing
        return part

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
        seed = check_int(seed, "seed", minimum=0)
        order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
        return self[order[count:].sort().values], self[order[:count].sort().values]

    def __repr__(self) -> str:
        names = f", class_names={list(self._class_names)!r}" if self._class_names else ""
        if self._groups is not None:
            names += f", groups={len(np.unique(self._groups))}"
        return f"ImageDataset(n={len(self)}, image_shape={self.image_shape}{names})"


def dataset_sha256(images: torch.Tensor, labels: torch.Tensor) -> str:
    """Return a sha256 fingerprint of a data set's pixels and labels.

    Record it with a model (``save(..., metadata={"train_sha256": ...})``) to know
    later exactly which data it was trained on.

    Example:
        >>> test = digitrec.load_mnist("test")
        >>> digest = digitrec.dataset_sha256(test.images, test.labels)
        >>> digest == digitrec.dataset_sha256(test.images.clone(), test.labels.clone())
        True
        >>> digest == digitrec.dataset_sha256(test.images[:-1], test.labels[:-1])
        False
    """
    digest = hashlib.sha256()
    for tensor in (images, labels):
        plain = tensor.detach().to("cpu").contiguous()
        digest.update(str((tuple(plain.shape), str(plain.dtype))).encode())
        digest.update(plain.numpy().tobytes())
    return digest.hexdigest()

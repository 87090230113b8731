"""Data sets: the :class:`ImageDataset` container, its splits, and bundled MNIST.

``dataset`` holds :class:`ImageDataset` (``uint8`` images and ``int64`` labels in
memory, indexing, seeded splits, and the constructors from arrays, IDX pairs,
MedMNIST archives, labelled folders and CSV files) and :func:`dataset_sha256`;
``mnist`` the copy of MNIST bundled inside the package, checked against the
sha256 of the original files, so digitrec works without a network. Files are
read by :mod:`digitrec.io`; models, training and evaluation build on this layer.
"""

from .dataset import ImageDataset, dataset_sha256
from .mnist import MNIST_CLASSES, load_mnist

__all__ = ["MNIST_CLASSES", "ImageDataset", "dataset_sha256", "load_mnist"]

"""Data sets: the :class:`ImageDataset` container, its splits, and bundled MNIST.

``dataset`` holds :class:`ImageDataset` (``uint8`` images and ``int64`` labels in
memory, indexing, seeded splits, and the constructors from arrays, IDX pairs,
MedMNIST archives, labelled folders and CSV files, with optional patient or
study identifiers per image) and :func:`dataset_sha256`; ``splits`` the splits
that do not leak (:func:`stratified_split`, :func:`group_split` by patient,
:func:`kfold`); ``mnist`` the copy of MNIST bundled inside the package, checked against the
sha256 of the original files, so digitrec works without a network. Files are
read by :mod:`digitrec.io`; models, training and evaluation build on this layer.
"""

from .dataset import ImageDataset, dataset_sha256
from .mnist import MNIST_CLASSES, load_mnist
from .splits import group_split, kfold, stratified_split

__all__ = [
    "MNIST_CLASSES",
    "ImageDataset",
    "dataset_sha256",
    "group_split",
    "kfold",
    "load_mnist",
    "stratified_split",
]

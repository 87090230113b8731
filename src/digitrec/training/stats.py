"""Pixel statistics of a data set: :func:`pixel_stats`, the normalization a model learns from.

A model built without ``mean`` and ``std`` (the default) takes them from its
training data when :meth:`Trainer.fit <digitrec.Trainer.fit>` first trains it:
MNIST's published numbers for bundled MNIST (so MNIST models keep them), and
this function's numbers for any other data. They are recorded in the model's
config, so they travel with it into files and exports.
"""

from __future__ import annotations

import math

import torch

from ..data import ImageDataset
from ..errors import InvalidInputError, InvalidTypeError

__all__ = ["pixel_stats"]

_CHUNK = 4096


def pixel_stats(dataset: ImageDataset) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Return the per-channel mean and standard deviation of a data set's pixels, 0-1 scale.

    Computed in float64 over every pixel of every image (a few images at a time,
    so memory stays small). A channel whose pixels are all equal gets a standard
    deviation of 1, so normalizing only shifts it.

    Args:
        dataset: The images, usually the training set.

    Returns:
        ``(mean, std)``, each a tuple of one value per channel; pass them as
        ``DigitClassifier(mean=..., std=...)``.

    Raises:
        InvalidTypeError: If ``dataset`` is not an ImageDataset.
        InvalidInputError: If it holds no images.

    Example:
        >>> mean, std = digitrec.training.pixel_stats(digitrec.load_mnist("train"))
        >>> round(mean[0], 4), round(std[0], 4)
        (0.1307, 0.3081)
    """
    if not isinstance(dataset, ImageDataset):
        raise InvalidTypeError(
            f"dataset must be a digitrec.ImageDataset, got {type(dataset).__name__}"
        )
    if len(dataset) == 0:
        raise InvalidInputError("dataset holds no images")
    images = dataset.images
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, images.shape[0], _CHUNK):
        chunk = images[start : start + _CHUNK].to(torch.float64).transpose(0, 1)
        chunk = chunk.reshape(channels, -1)
        total += chunk.sum(dim=1)
        squares += chunk.square().sum(dim=1)
    count = images.numel() // channels
    mean = total / count
    variance = (squares / count - mean.square()).clamp(min=0)
    std = variance.sqrt() / 255.0
    means = tuple(float(value) / 255.0 for value in mean)
    stds = tuple(float(s) if float(s) > 1e-6 and math.isfinite(float(s)) else 1.0 for s in std)
    return means, stds

"""The road every raw image takes to a model: read, prepare as the model's metadata says.

Arrays that already have the model's input shape (and data sets) pass through
unchanged unless preparation is asked for, so MNIST-framed arrays keep their
accuracy to the bit. Anything else (files, bytes, images of another size or
channel count) is prepared: a digit model's inputs with
:func:`~digitrec.prepare_digits` (MNIST's framing), any other model's by
resizing with padding to its input shape and converting the channels. The
library's prediction functions, evaluation, the command line and the server
all take this road.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from . import _images
from .data import ImageDataset
from .errors import InvalidInputError
from .io import read_image
from .models import DigitClassifier
from .models._validate import check_image_shape
from .preprocessing import prepare_digits, resize_images


def _is_file_like(item: object) -> bool:
    return isinstance(item, (str, bytes, bytearray, os.PathLike))


def _fit_channels(batch: torch.Tensor, channels: int) -> torch.Tensor:
    if batch.shape[1] == channels:
        return batch
    if channels == 3:
        return batch.expand(-1, 3, -1, -1).contiguous()
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (batch * weights).sum(dim=1, keepdim=True)


def prepare_for(model: DigitClassifier, images: torch.Tensor) -> torch.Tensor:
    """Bring an ``(N, C, H, W)`` batch of one size to the model's input, as the model says."""
    channels, height, width = model.input_shape
    if model.config.preparation == "digits":
        prepared = prepare_digits(images)
        if prepared.shape[2:] != (height, width):
            prepared = resize_images(prepared, (height, width), mode="stretch")
    else:
        prepared = resize_images(images, (height, width), mode="pad")
    return _fit_channels(prepared, channels)


def _prepare_each(model: DigitClassifier, images: Sequence[torch.Tensor]) -> torch.Tensor:
    """Prepare ``(1, C, H, W)`` images of any sizes, those of one size as one batch."""
    channels, height, width = model.input_shape
    out = torch.empty(len(images), channels, height, width)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for index, image in enumerate(images):
        by_shape.setdefault(tuple(image.shape[1:]), []).append(index)
    for positions in by_shape.values():
        batch = torch.cat([_as_float(images[i]) for i in positions])
        out[positions] = prepare_for(model, batch)
    return out


def _one_image(item: Any, channels: int, what: str) -> torch.Tensor:
    if _is_file_like(item):
        return read_image(item).unsqueeze(0)
    return _images.as_single_image(item, channels, what)


def _check_prepare(prepare: object) -> bool | None:
    if prepare is not None and not isinstance(prepare, bool):
        raise InvalidInputError(f"prepare must be True, False or None, got {prepare!r}")
    return prepare


def _as_float(image: torch.Tensor) -> torch.Tensor:
    return image.to(torch.float32).mul_(1.0 / 255.0) if image.dtype == torch.uint8 else image


def model_batch(
    model: DigitClassifier, images: Any, prepare: bool | None, what: str = "images"
) -> torch.Tensor:
    """Return ``images`` as an ``(N, C, H, W)`` batch that fits ``model``.

    ``images`` is a data set, a batch array or tensor, or a list of single images
    (files, bytes, arrays, tensors, PIL images) of any size. ``prepare=None``
    prepares what does not already fit (and files, which are raw by nature);
    ``True`` prepares everything; ``False`` nothing, so what does not fit is refused.
    """
    prepare = _check_prepare(prepare)
    channels = model.input_shape[0]
    if isinstance(images, (list, tuple)):
        items = [_one_image(item, channels, f"{what}[{i}]") for i, item in enumerate(images)]
        raw = any(_is_file_like(item) for item in images)
        fit = all(tuple(item.shape[1:]) == model.input_shape for item in items)
        if prepare is True or (prepare is None and (raw or not fit)):
            return _prepare_each(model, items)
        for item in items:
            check_image_shape(model, tuple(item.shape[1:]), what)
        if not items:
            return torch.empty(0, *model.input_shape)
        return torch.cat([_as_float(item) for item in items])
    batch = images.images if isinstance(images, ImageDataset) else _images.as_image_batch(images)
    fits = tuple(batch.shape[1:]) == model.input_shape
    if prepare is True or (prepare is None and not fits):
        return _prepare_each(model, list(torch.split(batch, 1)))
    check_image_shape(model, tuple(batch.shape[1:]), what)
    return batch


def model_image(model: DigitClassifier, image: Any, prepare: bool | None) -> torch.Tensor:
    """Return one image (file, bytes, array, tensor, PIL image) as a ``(1, C, H, W)`` batch."""
    prepare = _check_prepare(prepare)
    item = _one_image(image, model.input_shape[0], "image")
    fits = tuple(item.shape[1:]) == model.input_shape
    if prepare is True or (prepare is None and (_is_file_like(image) or not fits)):
        return prepare_for(model, item)
    check_image_shape(model, tuple(item.shape[1:]), "image")
    return item

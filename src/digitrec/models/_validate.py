"""Checks that a model, and the images or data set handed to it, fit together."""

from __future__ import annotations

import torch

from ..data import ImageDataset
from ..errors import InvalidInputError, InvalidTypeError
from .classifier import DigitClassifier


def check_model(model: object) -> DigitClassifier:
    if not isinstance(model, DigitClassifier):
        raise InvalidTypeError(
            f"model must be a digitrec.DigitClassifier, got {type(model).__name__}"
        )
    return model


def check_image_shape(model: DigitClassifier, shape: tuple[int, ...], what: str) -> None:
    if tuple(shape) != model.input_shape:
        raise InvalidInputError(
            f"{what} of shape (C, H, W) = {tuple(shape)} do not fit the model, "
            f"which expects {model.input_shape}"
        )


def check_labelled_data(model: DigitClassifier, data: object, what: str = "data") -> ImageDataset:
    """Check that ``data`` is a non-empty data set whose images and labels fit ``model``."""
    checked = check_labels(model, data, what)
    check_image_shape(model, checked.image_shape, f"{what} images")
    return checked


def check_labels(model: DigitClassifier, data: object, what: str = "data") -> ImageDataset:
    """Check that ``data`` is a non-empty data set whose labels fit ``model``."""
    if not isinstance(data, ImageDataset):
        raise InvalidTypeError(
            f"{what} must be a digitrec.ImageDataset, got {type(data).__name__}; "
            "wrap arrays with ImageDataset.from_arrays(images, labels)"
        )
    if len(data) == 0:
        raise InvalidInputError(f"{what} holds no images")
    largest = int(data.labels.max())
    if largest >= model.num_classes:
        raise InvalidInputError(
            f"{what} has label {largest}, but the model has {model.num_classes} classes "
            f"(labels 0 to {model.num_classes - 1})"
        )
    return data


def plain_forward(model: DigitClassifier) -> bool:
    """Whether the model's logits are its network's layers run in turn (no override, no hook)."""
    hooked = (
        model._forward_hooks,
        model._forward_pre_hooks,
        model.network._forward_hooks,
        model.network._forward_pre_hooks,
        torch.nn.modules.module._global_forward_hooks,
        torch.nn.modules.module._global_forward_pre_hooks,
    )
    return type(model).forward is DigitClassifier.forward and not any(hooked)

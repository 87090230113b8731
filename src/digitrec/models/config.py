"""The settings that rebuild a model: :class:`ModelConfig`, and MNIST's pixel statistics."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, get_args

from ..errors import InvalidInputError, InvalidTypeError

__all__ = ["MNIST_MEAN", "MNIST_STD", "Architecture", "ModelConfig", "Preparation", "Task"]

#: How a model's raw inputs are prepared: as digits in MNIST's framing, or resized.
Preparation = Literal["digits", "resize"]

#: The built-in networks; ``ModelConfig.arch`` also takes a name registered with
#: :func:`~digitrec.register_network`.
Architecture = Literal["mlp", "cnn", "resnet"]

#: What a network's name (``arch``) may look like.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

#: One label per image out of ``num_classes`` (softmax, cross-entropy), or any
#: subset of ``num_classes`` labels per image (sigmoids, binary cross-entropy).
Task = Literal["multiclass", "multilabel"]

#: Mean and standard deviation of MNIST's training pixels, on the 0-1 scale.
MNIST_MEAN: tuple[float, ...] = (0.1307,)
MNIST_STD: tuple[float, ...] = (0.3081,)

_MIN_SIDE = 8


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a :class:`DigitClassifier` (its weights aside).

    Attributes:
        arch: The network: ``"mlp"``, ``"cnn"``, ``"resnet"``, a name registered
            with :func:`~digitrec.register_network`, or ``"module"`` for a wrapped
            module that no registered factory builds (such a model cannot be saved).
        input_shape: ``(C, H, W)`` of one input image, ``C`` 1 or 3, sides >= 8.
        num_classes: Number of output classes, at least 2.
        mean: Per-channel pixel mean on the 0-1 scale (one value serves all
            channels); ``None`` until training decides (MNIST's numbers after
            training on bundled MNIST, the training images' own otherwise, see
            :func:`~digitrec.training.pixel_stats`), read as MNIST's meanwhile.
        std: Per-channel pixel standard deviation on the 0-1 scale, each > 0;
            ``None`` as for ``mean``.
        class_names: Optional names of the classes, in label order, one per class.
        prepare: How raw images (files, photos, other sizes) are brought to the
            model's input: ``"digits"`` with :func:`~digitrec.prepare_digits`
            (MNIST's framing: polarity, cropping, centring), ``"resize"`` by
            resizing with padding; ``None`` until training decides (``"digits"``
            after training on bundled MNIST, ``"resize"`` otherwise), read as
            ``"resize"``.
        task: ``"multiclass"`` (one label per image; softmax) or ``"multilabel"``
            (labels are ``(N, num_classes)`` 0/1 rows; sigmoids).

    Raises:
        InvalidInputError: If a value is out of range.
        InvalidTypeError: If a value has the wrong type.

    Example:
        >>> config = digitrec.ModelConfig(arch="cnn", num_classes=2)
        >>> digitrec.ModelConfig.from_dict(config.to_dict()) == config
        True
    """

    arch: str = "mlp"
    input_shape: tuple[int, int, int] = (1, 28, 28)
    num_classes: int = 10
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    class_names: tuple[str, ...] | None = None
    prepare: Preparation | None = None
    task: Task = "multiclass"

    def __post_init__(self) -> None:
        # Whether the name is registered is checked when the network is built, so the
        # config of a file naming an unregistered network still reads (to say so).
        if not isinstance(self.arch, str) or not NAME_PATTERN.fullmatch(self.arch):
            raise InvalidInputError(
                f"arch must be one of {get_args(Architecture)} or a registered network name, "
                f"got {self.arch!r}"
            )
        if self.task not in get_args(Task):
            raise InvalidInputError(f"task must be one of {get_args(Task)}, got {self.task!r}")
        shape = tuple(self.input_shape)
        if len(shape) != 3 or not all(_is_int(side) for side in shape):
            raise InvalidInputError(
                f"input_shape must be three integers (C, H, W), got {self.input_shape!r}"
            )
        channels, height, width = shape
        if channels not in (1, 3) or height < _MIN_SIDE or width < _MIN_SIDE:
            raise InvalidInputError(
                f"input_shape must have 1 or 3 channels and sides >= {_MIN_SIDE}, got {shape}"
            )
        if not _is_int(self.num_classes) or self.num_classes < 2:
            raise InvalidInputError(
                f"num_classes must be an integer >= 2, got {self.num_classes!r}"
            )
        for name in ("mean", "std"):
            values = getattr(self, name)
            if values is None:
                continue
            values = (values,) if isinstance(values, (int, float)) else tuple(values)
            if len(values) not in (1, channels) or not all(
                isinstance(v, (int, float)) and math.isfinite(v) for v in values
            ):
                raise InvalidInputError(
                    f"{name} must be 1 or {channels} finite numbers, got {getattr(self, name)!r}"
                )
            object.__setattr__(self, name, tuple(float(v) for v in values))
        if any(v <= 0 for v in self.std or ()):
            raise InvalidInputError(f"std must be > 0, got {self.std}")
        object.__setattr__(self, "input_shape", tuple(int(side) for side in shape))
        object.__setattr__(self, "num_classes", int(self.num_classes))
        if self.class_names is not None:
            names = tuple(self.class_names)
            valid = all(isinstance(name, str) for name in names) and len(set(names)) == len(names)
            if not valid or len(names) != self.num_classes:
                raise InvalidInputError(
                    f"class_names must be {self.num_classes} distinct strings (one per class), "
                    f"got {self.class_names!r}"
                )
            object.__setattr__(self, "class_names", names)
        if self.prepare is not None and self.prepare not in get_args(Preparation):
            raise InvalidInputError(
                f"prepare must be one of {get_args(Preparation)} or None, got {self.prepare!r}"
            )

    @property
    def preparation(self) -> Preparation:
        """What :attr:`prepare` means when predicting: ``None`` reads as ``"resize"``."""
        return self.prepare or "resize"

    @property
    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(mean, std)`` as the model applies them: MNIST's while they are ``None``."""
        return self.mean or MNIST_MEAN, self.std or MNIST_STD

    def to_dict(self) -> dict[str, Any]:
        """Return the config as a JSON-compatible dict.

        Example:
            >>> digitrec.ModelConfig().to_dict()["input_shape"]
            [1, 28, 28]
        """
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Rebuild a config from :meth:`to_dict`'s output, checking every key.

        Raises:
            InvalidInputError: For unknown keys or invalid values.

        Example:
            >>> digitrec.ModelConfig.from_dict({"arch": "cnn"}).arch
            'cnn'
        """
        if not isinstance(data, Mapping):
            raise InvalidTypeError(f"a model config must be a mapping, got {type(data).__name__}")
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInputError(
                f"unknown model config keys {unknown}; expected a subset of {sorted(known)}"
            )
        values = dict(data)
        for key in ("input_shape", "mean", "std", "class_names"):
            if key in values and isinstance(values[key], list):
                values[key] = tuple(values[key])
        return cls(**values)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

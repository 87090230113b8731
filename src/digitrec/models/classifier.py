"""The model class: :class:`DigitClassifier`, raw pixels in, logits out.

Preprocessing lives inside the model: it takes raw pixels (``uint8`` 0-255 or
float 0-1) and normalizes them itself, so wherever the model is embedded it
needs no separate transform that could drift out of sync with training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import InvalidInputError, InvalidTypeError
from .config import MNIST_MEAN, MNIST_STD, Architecture, ModelConfig, Preparation
from .networks import BUILDERS

__all__ = ["DigitClassifier"]


def _as_tuple(values: float | Sequence[float]) -> tuple[float, ...]:
    return tuple(values) if isinstance(values, Sequence) else (values,)


def _default_temperature(state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    # State dicts saved by digitrec 0.1 predate calibration: they load as uncalibrated (T = 1).
    state_dict.setdefault(f"{prefix}temperature", torch.ones(()))


class DigitClassifier(nn.Module):
    """An image classifier that takes raw pixels and returns logits.

    ``"mlp"`` is the notebook's network exactly: flatten, Linear 784→64, ReLU,
    Linear 64→32, ReLU, Linear 32→10 (52,650 parameters for 28x28 input).
    ``"cnn"`` is a small convolutional network that adapts to any input size.
    Both normalize their input themselves with ``mean`` and ``std``.

    Args:
        arch: ``"mlp"`` or ``"cnn"``.
        input_shape: ``(C, H, W)`` of one image; ``C`` 1 or 3, sides >= 8.
        num_classes: Number of classes, at least 2.
        mean: Pixel mean on the 0-1 scale, one value or one per channel.
        std: Pixel standard deviation on the 0-1 scale, one value or one per channel.
        class_names: Optional names of the classes, in label order; carried in the
            config (and so in checkpoints) for reports and plots.
        prepare: How raw images are brought to the input: ``"digits"`` (MNIST's
            framing, for digit models), ``"resize"``, or ``None`` to let training
            decide from its data (see :class:`ModelConfig`).
        seed: If given, initialise the weights from this seed without touching
            torch's global random state; otherwise use the global state, as
            torch modules do.

    Raises:
        InvalidInputError: For an unknown architecture or invalid shapes.

    Example:
        >>> model = digitrec.DigitClassifier("mlp", seed=0)
        >>> sum(p.numel() for p in model.parameters())
        52650
        >>> model(torch.zeros(2, 1, 28, 28, dtype=torch.uint8)).shape
        torch.Size([2, 10])
    """

    pixel_scale: torch.Tensor
    pixel_shift: torch.Tensor
    temperature: torch.Tensor

    def __init__(
        self,
        arch: Architecture = "mlp",
        *,
        input_shape: tuple[int, int, int] = (1, 28, 28),
        num_classes: int = 10,
        mean: float | Sequence[float] = MNIST_MEAN,
        std: float | Sequence[float] = MNIST_STD,
        class_names: Sequence[str] | None = None,
        prepare: Preparation | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        config = ModelConfig(
            arch=arch,
            input_shape=input_shape,
            num_classes=num_classes,
            mean=_as_tuple(mean),
            std=_as_tuple(std),
            class_names=None if class_names is None else tuple(class_names),
            prepare=prepare,
        )
        self._config = config
        if seed is None:
            self.network = BUILDERS[config.arch](config)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.network = BUILDERS[config.arch](config)
        # Convolutions run markedly faster on channels-last tensors (measured 1.4-1.8x
        # for training on CPU), so the CNN keeps its weights and activations that way.
        self._memory_format = (
            torch.channels_last if config.arch == "cnn" else torch.contiguous_format
        )
        # Module.to(memory_format=...) is documented, but torch's stubs leave it out.
        self.network.to(memory_format=self._memory_format)  # type: ignore[call-overload]
        shape = (1, -1, 1, 1)
        std_t = torch.tensor(config.std).view(shape)
        # (x - mean) / std folded into one multiply-add; not saved in the state dict
        # because the config already records mean and std.
        self.register_buffer("pixel_scale", 1.0 / std_t, persistent=False)
        self.register_buffer(
            "pixel_shift", -torch.tensor(config.mean).view(shape) / std_t, persistent=False
        )
        # Softmax temperature set by digitrec.calibrate; saved with the weights.
        self.register_buffer("temperature", torch.ones(()))
        # The private hook (in torch since 1.x) sees nested prefixes too, unlike an
        # override of load_state_dict; its stub is untyped.
        self._register_load_state_dict_pre_hook(_default_temperature)  # type: ignore[no-untyped-call]

    @classmethod
    def from_config(cls, config: ModelConfig, *, seed: int | None = None) -> DigitClassifier:
        """Build a fresh (untrained) model from a config.

        Example:
            >>> model = digitrec.DigitClassifier("cnn", num_classes=2)
            >>> digitrec.DigitClassifier.from_config(model.config).config == model.config
            True
        """
        if not isinstance(config, ModelConfig):
            raise InvalidTypeError(f"config must be a ModelConfig, got {type(config).__name__}")
        return cls(
            config.arch,
            input_shape=config.input_shape,
            num_classes=config.num_classes,
            mean=config.mean,
            std=config.std,
            class_names=config.class_names,
            prepare=config.prepare,
            seed=seed,
        )

    @property
    def config(self) -> ModelConfig:
        """The model's architecture settings."""
        return self._config

    @property
    def arch(self) -> Architecture:
        """``"mlp"`` or ``"cnn"``."""
        return self._config.arch

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one input image."""
        return self._config.input_shape

    @property
    def num_classes(self) -> int:
        """Number of output classes."""
        return self._config.num_classes

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """Names of the classes in label order, or ``None``."""
        return self._config.class_names

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Turn raw pixels into the normalized float32 input of the network.

        Args:
            images: ``(N, C, H, W)`` pixels, ``uint8`` (0-255) or float (0-1).

        Returns:
            ``float32`` tensor of the same shape, normalized with the model's mean and std.

        Example:
            >>> model = digitrec.DigitClassifier()
            >>> model.preprocess(torch.zeros(1, 1, 28, 28, dtype=torch.uint8)).mean().item()
            -0.42421...
        """
        if images.dtype == torch.uint8:
            pixels = images.to(torch.float32).mul_(1.0 / 255.0)
        elif images.is_floating_point():
            pixels = images.to(torch.float32)
        else:
            raise InvalidTypeError(
                f"images must be uint8 (0-255) or floating point (0-1), got {images.dtype}"
            )
        return torch.addcmul(self.pixel_shift, pixels, self.pixel_scale)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Return the logits, shape ``(N, num_classes)``, for a batch of raw pixels.

        Raises:
            InvalidInputError: If the batch is not ``(N, *input_shape)``.
            InvalidTypeError: If the pixels are neither uint8 nor floating point.
        """
        if images.dim() != 4 or tuple(images.shape[1:]) != self._config.input_shape:
            raise InvalidInputError(
                f"expected a batch of shape (N, {', '.join(map(str, self._config.input_shape))}), "
                f"got {tuple(images.shape)}"
            )
        inputs = self.preprocess(images).contiguous(memory_format=self._memory_format)
        logits: torch.Tensor = self.network(inputs)
        return logits

    def extra_repr(self) -> str:
        """Summarize the config in the module's ``repr``."""
        return f"arch={self.arch!r}, input_shape={self.input_shape}, num_classes={self.num_classes}"

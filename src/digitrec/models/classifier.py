"""The model class: :class:`DigitClassifier`, raw pixels in, logits out.

Preprocessing lives inside the model: it takes raw pixels (``uint8`` 0-255 or
float 0-1) and normalizes them itself, so wherever the model is embedded it
needs no separate transform that could drift out of sync with training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from ..errors import InvalidInputError, InvalidTypeError
from .config import ModelConfig, Preparation, Task
from .networks import UNNAMED, network_factory

__all__ = ["DigitClassifier"]


def _as_tuple(values: float | Sequence[float] | None) -> tuple[float, ...] | None:
    if values is None:
        return None
    return tuple(values) if isinstance(values, Sequence) else (values,)


# Convolutions run markedly faster on channels-last tensors (measured 1.4-1.8x for
# training on CPU), so the convolutional networks keep weights and activations that way.
_CHANNELS_LAST = ("cnn", "resnet")


def _default_temperature(state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    # State dicts saved by digitrec 0.1 predate calibration: they load as uncalibrated (T = 1).
    state_dict.setdefault(f"{prefix}temperature", torch.ones(()))


class OODStatistics(Protocol):
    """What a model's attached out-of-distribution statistics offer (see ``models.ood``)."""

    @property
    def threshold(self) -> float:
        """The score above which an image counts as out of distribution."""


class DigitClassifier(nn.Module):
    """An image classifier that takes raw pixels and returns logits.

    ``"mlp"`` is the notebook's network exactly: flatten, Linear 784→64, ReLU,
    Linear 64→32, ReLU, Linear 32→10 (52,650 parameters for 28x28 input).
    ``"cnn"`` is a small convolutional network that adapts to any input size,
    ``"resnet"`` a small residual network (three stages of basic blocks) for inputs
    of 28 to 224 pixels. A network registered with
    :func:`~digitrec.register_network`, or any ``nn.Module`` wrapped with
    :meth:`from_module`, works the same way. Every model normalizes its input
    itself with ``mean`` and ``std``.

    Args:
        arch: ``"mlp"``, ``"cnn"``, ``"resnet"`` or a registered network name.
        input_shape: ``(C, H, W)`` of one image; ``C`` 1 or 3, sides >= 8.
        num_classes: Number of classes, at least 2.
        mean: Pixel mean on the 0-1 scale, one value or one per channel; ``None``
            (the default) lets training decide: MNIST's numbers for bundled MNIST,
            the training images' own otherwise (MNIST's until then).
        std: Pixel standard deviation on the 0-1 scale, one value or one per
            channel; ``None`` with ``mean``.
        class_names: Optional names of the classes, in label order; carried in the
            config (and so in checkpoints) for reports and plots.
        prepare: How raw images are brought to the input: ``"digits"`` (MNIST's
            framing, for digit models), ``"resize"``, or ``None`` to let training
            decide from its data (see :class:`ModelConfig`).
        task: ``"multiclass"`` or ``"multilabel"`` (see :class:`ModelConfig`).
        seed: If given, initialise the weights from this seed without touching
            torch's global random state; otherwise use the global state, as
            torch modules do.

    Raises:
        InvalidInputError: For an unknown (unregistered) architecture or invalid shapes.

    Example:
        >>> model = digitrec.DigitClassifier("mlp", seed=0)
        >>> sum(p.numel() for p in model.parameters())
        52650
        >>> model(torch.zeros(2, 1, 28, 28, dtype=torch.uint8)).shape
        torch.Size([2, 10])
    """

    pixel_scale: torch.Tensor
    #: Out-of-distribution statistics of the training data, set by
    #: :meth:`~digitrec.OODDetector.attach` (and by :func:`~digitrec.load` when the file
    #: holds them); ``None`` without.
    ood: OODStatistics | None = None
    pixel_shift: torch.Tensor
    temperature: torch.Tensor

    def __init__(
        self,
        arch: str = "mlp",
        *,
        input_shape: tuple[int, int, int] = (1, 28, 28),
        num_classes: int = 10,
        mean: float | Sequence[float] | None = None,
        std: float | Sequence[float] | None = None,
        class_names: Sequence[str] | None = None,
        prepare: Preparation | None = None,
        task: Task = "multiclass",
        seed: int | None = None,
    ) -> None:
        super().__init__()
        config = _make_config(arch, input_shape, num_classes, mean, std, class_names, prepare, task)
        factory = network_factory(config.arch)
        if seed is None:
            network = factory(config)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                network = factory(config)
        self._attach(config, network)

    def _attach(self, config: ModelConfig, network: nn.Module) -> None:
        self._config = config
        self.network = network
        self._memory_format = (
            torch.channels_last if config.arch in _CHANNELS_LAST else torch.contiguous_format
        )
        # Module.to(memory_format=...) is documented, but torch's stubs leave it out.
        self.network.to(memory_format=self._memory_format)  # type: ignore[call-overload]
        self.register_buffer("pixel_scale", torch.ones(1, 1, 1, 1), persistent=False)
        self.register_buffer("pixel_shift", torch.zeros(1, 1, 1, 1), persistent=False)
        self._set_normalization(config.mean, config.std)
        # Softmax temperature set by digitrec.calibrate; saved with the weights.
        self.register_buffer("temperature", torch.ones(()))
        # The private hook (in torch since 1.x) sees nested prefixes too, unlike an
        # override of load_state_dict; its stub is untyped.
        self._register_load_state_dict_pre_hook(_default_temperature)  # type: ignore[no-untyped-call]

    def _set_normalization(
        self, mean: tuple[float, ...] | None, std: tuple[float, ...] | None
    ) -> None:
        """Record ``mean`` and ``std`` in the config and in the folded buffers."""
        self._config = replace(self._config, mean=mean, std=std)
        mean_v, std_v = self._config.normalization
        shape = (1, -1, 1, 1)
        # (x - mean) / std folded into one multiply-add; not saved in the state dict
        # because the config already records mean and std. The float32 division is
        # done by numpy (the same IEEE result): under torch.device("meta"), where
        # load() builds models, torch's would import torch._dynamo (2 s).
        std_32 = np.asarray(std_v, dtype=np.float32)
        device = self.pixel_scale.device
        self.pixel_scale = torch.tensor(np.float32(1.0) / std_32).view(shape).to(device)
        shift = -np.asarray(mean_v, dtype=np.float32) / std_32
        self.pixel_shift = torch.tensor(shift).view(shape).to(device)

    @classmethod
    def from_module(
        cls,
        module: nn.Module,
        *,
        input_shape: tuple[int, int, int],
        num_classes: int,
        factory: str | None = None,
        class_names: Sequence[str] | None = None,
        mean: float | Sequence[float] | None = None,
        std: float | Sequence[float] | None = None,
        prepare: Preparation | None = None,
        task: Task = "multiclass",
    ) -> DigitClassifier:
        """Wrap any network in digitrec's preprocessing, training, evaluation and files.

        The model takes raw pixels, normalizes them (``mean``, ``std``) and hands
        ``(N, C, H, W)`` float32 input to ``module``, which returns
        ``(N, num_classes)`` logits. Everything that takes a DigitClassifier takes
        the result. To save and load it, register a factory that rebuilds the
        network from the config with :func:`~digitrec.register_network` and name it
        here: the file records the name and the weights (safetensors), and
        :func:`~digitrec.load` calls the factory registered under that name.

        Args:
            module: The network; it becomes ``model.network`` (not copied).
            input_shape: ``(C, H, W)`` of one image; ``C`` 1 or 3, sides >= 8.
            num_classes: Number of logits the module returns, at least 2.
            factory: The name of a registered factory that builds this network's
                architecture (its weights must have the same names and shapes);
                ``None``: the model cannot be saved with :func:`~digitrec.save`.
            class_names: Optional names of the classes, in label order.
            mean: Pixel mean on the 0-1 scale, or ``None`` to let training decide.
            std: Pixel standard deviation on the 0-1 scale, or ``None`` with ``mean``.
            prepare: How raw images are brought to the input (see :class:`ModelConfig`).
            task: ``"multiclass"`` or ``"multilabel"``.

        Returns:
            The wrapping classifier, in the module's train/eval mode.

        Raises:
            InvalidTypeError: If ``module`` is not an ``nn.Module``.
            InvalidInputError: If ``factory`` is not registered or builds other
                weights, or the module does not return ``(N, num_classes)`` logits
                for a batch of ``input_shape``.

        Example:
            >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
            >>> model = digitrec.DigitClassifier.from_module(
            ...     net, input_shape=(1, 28, 28), num_classes=10)
            >>> model(torch.zeros(2, 1, 28, 28, dtype=torch.uint8)).shape, model.arch
            (torch.Size([2, 10]), 'module')
        """
        if not isinstance(module, nn.Module):
            raise InvalidTypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        config = _make_config(
            UNNAMED if factory is None else factory,
            input_shape,
            num_classes,
            mean,
            std,
            class_names,
            prepare,
            task,
        )
        if factory is not None:
            _check_factory_builds(factory, config, module)
        _check_logits(module, config)
        model = cls.__new__(cls)
        nn.Module.__init__(model)
        model._attach(config, module)
        model.train(module.training)
        return model

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
            task=config.task,
            seed=seed,
        )

    @property
    def config(self) -> ModelConfig:
        """The model's architecture settings."""
        return self._config

    @property
    def arch(self) -> str:
        """The network's name: built-in, registered, or ``"module"`` for an unnamed one."""
        return self._config.arch

    @property
    def task(self) -> Task:
        """``"multiclass"`` or ``"multilabel"``."""
        return self._config.task

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Turn this model's logits into probabilities, with its softmax temperature.

        A softmax over the classes for ``"multiclass"`` models (rows sum to 1); a
        sigmoid of each logit for ``"multilabel"`` models (each label on its own).

        Example:
            >>> model = digitrec.DigitClassifier(num_classes=2, task="multilabel")
            >>> model.probabilities(torch.tensor([[0.0, 100.0]]))
            tensor([[0.5000, 1.0000]])
        """
        scaled = logits / self.temperature.to(logits.device)
        if self._config.task == "multilabel":
            return torch.sigmoid(scaled)
        return torch.softmax(scaled, dim=1)

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


def _make_config(
    arch: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    mean: float | Sequence[float] | None,
    std: float | Sequence[float] | None,
    class_names: Sequence[str] | None,
    prepare: Preparation | None,
    task: Task,
) -> ModelConfig:
    return ModelConfig(
        arch=arch,
        input_shape=input_shape,
        num_classes=num_classes,
        mean=_as_tuple(mean),
        std=_as_tuple(std),
        class_names=None if class_names is None else tuple(class_names),
        prepare=prepare,
        task=task,
    )


def _check_factory_builds(name: str, config: ModelConfig, module: nn.Module) -> None:
    # On the meta device: shapes only, no memory and no initialization cost.
    with torch.device("meta"):
        expected = {k: v.shape for k, v in network_factory(name)(config).state_dict().items()}
    actual = {k: v.shape for k, v in module.state_dict().items()}
    if expected != actual:
        differ = sorted(k for k in set(expected) | set(actual) if expected.get(k) != actual.get(k))
        raise InvalidInputError(
            f"the factory registered as {name!r} builds a network whose weights differ from "
            f"the module's in {differ[:5]} (factory "
            f"{[tuple(expected[k]) if k in expected else None for k in differ[:5]]}, module "
            f"{[tuple(actual[k]) if k in actual else None for k in differ[:5]]}), so a saved "
            "model could not be rebuilt"
        )


def _check_logits(module: nn.Module, config: ModelConfig) -> None:
    parameter = next(module.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = module.training
    try:
        with torch.no_grad():
            logits = module.eval()(torch.zeros(2, *config.input_shape, device=device))
    finally:
        module.train(was_training)
    expected = (2, config.num_classes)
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != expected:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise InvalidInputError(
            f"module must map a batch of shape (2, {', '.join(map(str, config.input_shape))}) "
            f"to logits of shape {expected}, got {got}"
        )

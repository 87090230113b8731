"""The networks: the built-in architectures and the registry of the user's own.

A network is built by a factory, a function from a :class:`ModelConfig` to an
``nn.Module`` that maps normalized ``(N, C, H, W)`` float32 input to
``(N, num_classes)`` logits. The built-in factories (``"mlp"``, ``"cnn"``,
``"resnet"``) return an ``nn.Sequential`` ending with a ``Linear`` layer to the
logits, so everything before it gives the penultimate features (which
out-of-distribution scores use). :func:`register_network` adds a factory under a
name, so that a model file naming it can be rebuilt without unpickling anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import MappingProxyType

import torch
from torch import nn

from .._checks import check_bool
from ..errors import InvalidInputError, InvalidTypeError
from .config import NAME_PATTERN, ModelConfig

__all__ = ["BUILTIN_NETWORKS", "NetworkFactory", "network_factory", "register_network"]

#: A function from a model's config to its network (normalized pixels in, logits out).
NetworkFactory = Callable[[ModelConfig], nn.Module]

#: The config's ``arch`` of a model wrapping a module that no registered factory builds.
UNNAMED = "module"


def _mlp(config: ModelConfig) -> nn.Sequential:
    # The notebook's network, layer for layer: 784 -> 64 -> 32 -> classes for 28x28 input.
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(config.input_shape), 64),
        nn.ReLU(),
        nn.Linear(64, 32),
        nn.ReLU(),
        nn.Linear(32, config.num_classes),
    )


def _conv_block(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


def _cnn(config: ModelConfig) -> nn.Sequential:
    # Three conv-BN-ReLU stages of 16, 32 and 64 channels, each halving the sides
    # (28 -> 14 -> 7 -> 3; an 8-pixel side still ends at 1). Adaptive pooling to 3x3
    # fixes the head's size whatever the input size. Sized from measurements: about
    # 10 s per MNIST epoch on 2 CPU cores, 99.6% with the "cnn" recipe.
    return nn.Sequential(
        *_conv_block(config.input_shape[0], 16),
        nn.MaxPool2d(2),
        *_conv_block(16, 32),
        nn.MaxPool2d(2),
        *_conv_block(32, 64),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(3),
        nn.Flatten(),
        nn.Linear(64 * 3 * 3, 128),
        nn.ReLU(inplace=True),
        nn.Linear(128, config.num_classes),
    )


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 projection) shortcut, as in ResNet-18."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        # The last BN of each block starts at zero, so each block starts as the identity.
        nn.init.zeros_(self.bn2.weight)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``."""
        out = self.bn1(self.conv1(x)).relu_()
        out = self.bn2(self.conv2(out))
        result: torch.Tensor = (out + self.shortcut(x)).relu_()
        return result


def _resnet(config: ModelConfig) -> nn.Sequential:
    # A stem, then three stages of two basic blocks (16, 32, 64 channels; the last two
    # halve the sides), adaptive pooling and a linear head: 175 k parameters whatever
    # the input size, small enough to train on a CPU. Inputs over 32 px get a strided
    # stem, and over 96 px a max pool too (as ResNet's), so the first stage sees at
    # most about 56x56 (224 -> 112 -> 56) and the cost grows slowly with the size.
    channels, height, width = config.input_shape
    side = min(height, width)
    stem: list[nn.Module] = [
        nn.Conv2d(channels, 16, 3, 2 if side > 32 else 1, 1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(inplace=True),
    ]
    if side > 96:
        stem.append(nn.MaxPool2d(3, 2, 1))
    stages: list[nn.Module] = []
    in_channels = 16
    for out_channels, stride in ((16, 1), (32, 2), (64, 2)):
        stages += [
            BasicBlock(in_channels, out_channels, stride),
            BasicBlock(out_channels, out_channels, 1),
        ]
        in_channels = out_channels
    return nn.Sequential(
        *stem,
        *stages,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(in_channels, config.num_classes),
    )


#: The built-in networks by name.
BUILTIN_NETWORKS: MappingProxyType[str, NetworkFactory] = MappingProxyType(
    {"mlp": _mlp, "cnn": _cnn, "resnet": _resnet}
)
_REGISTERED: dict[str, NetworkFactory] = {}


def register_network(name: str, factory: NetworkFactory, *, overwrite: bool = False) -> None:
    """Register a factory that builds a network from a model config, under a name.

    A model wrapping the network (:meth:`DigitClassifier.from_module
    <digitrec.DigitClassifier.from_module>` with ``factory=name``) records the name
    in its config; :func:`~digitrec.load` rebuilds the network by calling the
    factory registered under that name in the loading process, then loads the
    weights. Nothing is unpickled, so the code that builds the network is whatever
    the loading program registered, never something read from the file.

    Args:
        name: Letters, digits, ``.``, ``_`` and ``-``, at most 64 characters; not a
            built-in name (``"mlp"``, ``"cnn"``, ``"resnet"``) nor ``"module"``.
        factory: A function ``factory(config) -> nn.Module``; the module maps
            ``(N, C, H, W)`` float32 input, already normalized, to
            ``(N, config.num_classes)`` logits.
        overwrite: Replace a factory already registered under ``name``.

    Raises:
        InvalidInputError: For an invalid or built-in name, or a name already
            registered (without ``overwrite``).
        InvalidTypeError: If ``factory`` is not callable.

    Example:
        >>> def tiny(config):
        ...     return torch.nn.Sequential(torch.nn.Flatten(),
        ...         torch.nn.Linear(784, config.num_classes))
        >>> digitrec.register_network("tiny-linear", tiny, overwrite=True)
        >>> digitrec.DigitClassifier("tiny-linear", seed=0)(torch.zeros(1, 1, 28, 28)).shape
        torch.Size([1, 10])
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidInputError(
            "name must be 1 to 64 letters, digits, '.', '_' or '-' (starting with a letter or "
            f"digit), got {name!r}"
        )
    if name in BUILTIN_NETWORKS or name == UNNAMED:
        raise InvalidInputError(f"name must not be a built-in network or {UNNAMED!r}, got {name!r}")
    if not callable(factory):
        raise InvalidTypeError(
            f"factory must be a function from a ModelConfig to an nn.Module, got "
            f"{type(factory).__name__}"
        )
    if name in _REGISTERED and not check_bool(overwrite, "overwrite"):
        raise InvalidInputError(
            f"a network named {name!r} is already registered; pass overwrite=True to replace it"
        )
    _REGISTERED[name] = factory


def network_factory(name: str) -> NetworkFactory:
    """Return the factory of a built-in or registered network, or say how to register it."""
    factory = BUILTIN_NETWORKS.get(name) or _REGISTERED.get(name)
    if factory is not None:
        return factory
    if name == UNNAMED:
        raise InvalidInputError(
            "this model wraps an nn.Module that no registered factory builds, so its network "
            "cannot be rebuilt from its config; register one with digitrec.register_network("
            "name, factory) and wrap the module with DigitClassifier.from_module(..., "
            "factory=name)"
        )
    raise InvalidInputError(
        f"arch must be one of {tuple(BUILTIN_NETWORKS)} or a name registered with "
        f"digitrec.register_network, got {name!r}; register its factory with "
        f"digitrec.register_network({name!r}, factory) before building or loading it"
    )

"""The models: :class:`DigitClassifier`, its configuration, networks and model files.

``config`` holds :class:`ModelConfig` (everything that rebuilds a model but its
weights), ``networks`` the built-in architectures (``"mlp"``, ``"cnn"``,
``"resnet"``) and the registry of the user's own (:func:`register_network`),
``classifier`` the :class:`DigitClassifier` module that takes raw pixels and
returns logits (and wraps any ``nn.Module``: :meth:`DigitClassifier.from_module`), and
``files`` the safe model files (:func:`save`, :func:`load`), which store the
weights as safetensors and the config as JSON, never a pickle, ``bundled``
the pretrained models bundled inside the package, and ``ood`` the out-of-distribution
statistics a model carries. Models sit above
data sets and below inference, evaluation and training.
"""

from .bundled import PRETRAINED, PretrainedName, pretrained
from .classifier import DigitClassifier
from .config import MNIST_MEAN, MNIST_STD, Architecture, ModelConfig, Task
from .files import MODEL_FORMAT, load, read_metadata, save
from .networks import NetworkFactory, register_network

__all__ = [
    "MNIST_MEAN",
    "MNIST_STD",
    "MODEL_FORMAT",
    "PRETRAINED",
    "Architecture",
    "DigitClassifier",
    "ModelConfig",
    "NetworkFactory",
    "PretrainedName",
    "Task",
    "load",
    "pretrained",
    "read_metadata",
    "register_network",
    "save",
]

"""The models: :class:`DigitClassifier`, its configuration, networks and model files.

``config`` holds :class:`ModelConfig` (everything that rebuilds a model but its
weights), ``networks`` the built-in architectures, ``classifier`` the
:class:`DigitClassifier` module that takes raw pixels and returns logits, and
``files`` the safe model files (:func:`save`, :func:`load`), which store the
weights as safetensors and the config as JSON, never a pickle, ``pretrained``
the models bundled inside the package, and ``ood`` the out-of-distribution
statistics a model carries. Models sit above
data sets and below inference, evaluation and training.
"""

from .classifier import DigitClassifier
from .config import MNIST_MEAN, MNIST_STD, Architecture, ModelConfig
from .files import MODEL_FORMAT, load, read_metadata, save
from .pretrained import PRETRAINED, PretrainedName, pretrained

__all__ = [
    "MNIST_MEAN",
    "MNIST_STD",
    "MODEL_FORMAT",
    "PRETRAINED",
    "Architecture",
    "DigitClassifier",
    "ModelConfig",
    "PretrainedName",
    "load",
    "pretrained",
    "read_metadata",
    "save",
]

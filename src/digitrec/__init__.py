"""digitrec: a typed PyTorch library for recognizing handwritten digits and other small images.

Example:
    >>> import digitrec
    >>> model = digitrec.DigitClassifier("mlp", seed=0)
    >>> history = digitrec.Trainer(model, epochs=1, progress=False).fit(
    ...     digitrec.load_mnist("train")[:1000])
    >>> isinstance(digitrec.evaluate_accuracy(model, digitrec.load_mnist("test")[:100]),
    ...            digitrec.AccuracyResult)
    True
"""

from ._device import DeviceLike
from ._version import __version__
from .attribution import ExplainMethod, explain
from .data import MNIST_CLASSES, ImageDataset, dataset_sha256, load_mnist
from .errors import (
    CheckpointError,
    ChecksumError,
    DataFileError,
    DataNotFoundError,
    DeviceUnavailableError,
    DigitrecError,
    InvalidInputError,
    InvalidTypeError,
    MissingDependencyError,
)
from .evaluation import AccuracyResult, ClassificationReport, calibrate, evaluate, evaluate_accuracy
from .exporting import export
from .inference import (
    ABSTAINED,
    Prediction,
    classify,
    get_predicted_label,
    predict,
    predict_or_abstain,
    predict_proba,
)
from .io import read_dicom, read_image
from .models import (
    MNIST_MEAN,
    MNIST_STD,
    MODEL_FORMAT,
    Architecture,
    DigitClassifier,
    ModelConfig,
    load,
    pretrained,
    read_metadata,
    save,
)
from .preprocessing import ResizeMode, prepare_digits, resize_images
from .training import (
    RECIPES,
    TRAINING_FORMAT,
    Callback,
    Checkpoint,
    EarlyStopping,
    History,
    LRSchedule,
    MetricsLogger,
    OptimizerName,
    TrainConfig,
    Trainer,
)

__all__ = [
    "ABSTAINED",
    "MNIST_CLASSES",
    "MNIST_MEAN",
    "MNIST_STD",
    "MODEL_FORMAT",
    "RECIPES",
    "TRAINING_FORMAT",
    "AccuracyResult",
    "Architecture",
    "Callback",
    "Checkpoint",
    "CheckpointError",
    "ChecksumError",
    "ClassificationReport",
    "DataFileError",
    "DataNotFoundError",
    "DeviceLike",
    "DeviceUnavailableError",
    "DigitClassifier",
    "DigitrecError",
    "EarlyStopping",
    "ExplainMethod",
    "History",
    "ImageDataset",
    "InvalidInputError",
    "InvalidTypeError",
    "LRSchedule",
    "MetricsLogger",
    "MissingDependencyError",
    "ModelConfig",
    "OptimizerName",
    "Prediction",
    "ResizeMode",
    "TrainConfig",
    "Trainer",
    "__version__",
    "calibrate",
    "classify",
    "dataset_sha256",
    "evaluate",
    "evaluate_accuracy",
    "explain",
    "export",
    "get_predicted_label",
    "load",
    "load_mnist",
    "predict",
    "predict_or_abstain",
    "predict_proba",
    "pretrained",
    "prepare_digits",
    "read_dicom",
    "read_image",
    "read_metadata",
    "resize_images",
    "save",
]

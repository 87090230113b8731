"""Saving and loading models safely: safetensors weights with a JSON header.

A model file is a `safetensors <https://huggingface.co/docs/safetensors>`_ file:
the weights as plain tensors, and in its header a JSON document with everything
needed to rebuild and trust the model (architecture, input shape, classes,
normalization, calibration temperature, library versions, and whatever training
settings, data checksums and test metrics the caller records). Loading parses
that format only; nothing is ever unpickled, so a model file cannot run code.
Files are written atomically: to a temporary file beside the target, flushed to
disk, then renamed over it, so a crash leaves either the old file or the new one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from .._device import DeviceLike, resolve_device
from ..errors import CheckpointError, DigitrecError, InvalidInputError
from ..io.atomic import write_atomically
from ..io.tensorfile import read_file, tensors_to_bytes, versions
from ._validate import check_model
from .classifier import DigitClassifier
from .config import ModelConfig
from .networks import network_factory
from .ood import OODDetector

__all__ = ["MODEL_FORMAT", "load", "read_metadata", "save"]

#: The format tag written into every model file's header.
MODEL_FORMAT = "digitrec.model/1"

# Out-of-distribution statistics (an attached OODDetector) are stored beside the weights
# as tensors with this prefix, and described by the header's "ood" entry.
_OOD_PREFIX = "ood."


def _saved_at() -> str:
    # SOURCE_DATE_EPOCH (reproducible-builds.org) pins the time, so a seeded script
    # writes the same bytes on every run.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = (
        datetime.fromtimestamp(int(epoch), timezone.utc)
        if epoch and epoch.isdigit()
        else datetime.now(timezone.utc)
    )
    return moment.isoformat(timespec="seconds")


def save(
    model: DigitClassifier,
    path: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Save a model as safetensors weights with a JSON header, atomically.

    Args:
        model: The classifier to save (its weights, config and temperature, and the
            out-of-distribution statistics attached as ``model.ood``, if any).
        path: Where to write, conventionally ending in ``.safetensors``.
        metadata: Anything JSON-serializable to record with the model, such as the
            training settings (``trainer.config.to_dict()``), data checksums
            (:func:`dataset_sha256`) and test metrics (``report.to_dict()``).

    Returns:
        The path written.

    Raises:
        InvalidTypeError: If ``model`` is not a DigitClassifier.
        InvalidInputError: If ``metadata`` cannot be written as JSON, or ``model.ood``
            was fitted on other weights.
            Or if the model wraps a network that no registered factory rebuilds
            (see :meth:`DigitClassifier.from_module`).

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "mlp.safetensors")
        >>> model = digitrec.DigitClassifier(seed=0)
        >>> _ = digitrec.save(model, path, metadata={"note": "untrained"})
        >>> digitrec.read_metadata(path)["metadata"]
        {'note': 'untrained'}
    """
    model = check_model(model)
    network_factory(model.arch)  # a wrapped network must be rebuildable from a registered name
    header = {
        "format": MODEL_FORMAT,
        "config": model.config.to_dict(),
        "temperature": float(model.temperature),
        "versions": versions(),
        "saved_at": _saved_at(),
        "metadata": dict(metadata or {}),
    }
    try:
        json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(f"metadata must be JSON-serializable: {error}") from error
    tensors = dict(model.state_dict())
    detector = getattr(model, "ood", None)
    if detector is not None:
        if not isinstance(detector, OODDetector):
            raise InvalidInputError(
                f"model.ood must be a digitrec.OODDetector, got {type(detector).__name__}"
            )
        detector.check_model(model)  # statistics of older weights must not travel with new ones
        header["ood"] = detector.description()
        tensors |= {f"{_OOD_PREFIX}{name}": t for name, t in detector.state_tensors().items()}
    target = Path(path).expanduser()
    write_atomically(target, tensors_to_bytes(tensors, header))
    return target


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the JSON header of a saved model: config, temperature, versions, metadata.

    Raises:
        DataNotFoundError: If the file does not exist.
        CheckpointError: If it is not a digitrec model file.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "m.safetensors")
        >>> _ = digitrec.save(digitrec.DigitClassifier("cnn", num_classes=2), path)
        >>> digitrec.read_metadata(path)["config"]["arch"]
        'cnn'
    """
    _, header = read_file(path, "model file")
    return header


def load(path: str | os.PathLike[str], *, device: DeviceLike = "cpu") -> DigitClassifier:
    """Load a model saved by :func:`save`, without unpickling anything.

    Args:
        path: The model file.
        device: Where to put the model.

    Returns:
        The model, in eval mode, with its weights, config and temperature, and its
        out-of-distribution statistics attached as ``model.ood`` if it was saved with them.

    Raises:
        DataNotFoundError: If the file does not exist.
        CheckpointError: If the file is not a digitrec model (a pickle, a truncated
            file, another program's file), its weights do not fit its config, or its
            out-of-distribution statistics are broken or belong to other weights.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "mlp.safetensors")
        >>> original = digitrec.DigitClassifier(seed=0)
        >>> _ = digitrec.save(original, path)
        >>> restored = digitrec.load(path)
        >>> all(torch.equal(a, b) for a, b in zip(original.state_dict().values(),
        ...                                       restored.state_dict().values()))
        True
    """
    tensors, header = read_file(path, "model file")
    ood_tensors = {
        name[len(_OOD_PREFIX) :]: tensors.pop(name)
        for name in [name for name in tensors if name.startswith(_OOD_PREFIX)]
    }
    if header.get("format") != MODEL_FORMAT:
        raise CheckpointError(
            f"{str(path)!r} has format {header.get('format')!r}; this digitrec reads "
            f"{MODEL_FORMAT!r}"
        )
    try:
        config = ModelConfig.from_dict(header["config"])
        # Shapes first, on the meta device (no memory): a header claiming a billion
        # classes must be refused, not allocated.
        with torch.device("meta"):
            expected = DigitClassifier.from_config(config).state_dict()
    except (KeyError, DigitrecError) as error:
        raise CheckpointError(f"{str(path)!r} has an invalid model config: {error}") from error
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [
        f"{name}: file {tuple(tensors[name].shape)}, config {tuple(expected[name].shape)}"
        for name in sorted(set(expected) & set(tensors))
        if tensors[name].shape != expected[name].shape
        or tensors[name].dtype != expected[name].dtype
    ]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"the weights in {str(path)!r} do not fit its config ({config.arch}, input "
            f"{config.input_shape}, {config.num_classes} classes): missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, wrong shape or dtype {wrong[:5]}"
        )
    temperature = tensors.get("temperature", torch.ones(()))
    if (
        temperature.numel() != 1
        or not bool(torch.isfinite(temperature).all())
        or (float(temperature) <= 0)
    ):
        raise CheckpointError(
            f"{str(path)!r} has softmax temperature {temperature.tolist()}; a temperature "
            "must be one finite number > 0 (digitrec.calibrate never sets another)"
        )
    model = DigitClassifier.from_config(config)
    model.load_state_dict(tensors)
    if "ood" in header or ood_tensors:
        try:
            OODDetector.from_state(header.get("ood", {}), ood_tensors).attach(model)
        except InvalidInputError as error:
            raise CheckpointError(
                f"{str(path)!r} has out-of-distribution statistics of other weights: {error}"
            ) from error
    return model.to(resolve_device(device)).eval()

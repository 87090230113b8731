"""Exporting a model for deployment without digitrec: ONNX and TorchScript.

An exported model is a self-contained program that runs where neither digitrec
nor (for ONNX) PyTorch is installed, for example under `ONNX Runtime
<https://onnxruntime.ai>`_. Preprocessing is part of it, as it is part of
:class:`~digitrec.models.DigitClassifier`: it takes raw ``uint8`` pixels and
returns the logits and the calibrated class probabilities, so the serving code
needs no transform that could drift out of sync with training.

ONNX export needs the ``onnx`` extra: ``pip install "digitrec[onnx]"``.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from torch import nn

from .errors import InvalidInputError, InvalidTypeError, MissingDependencyError
from .io.atomic import write_atomically
from .io.tensorfile import versions
from .models import DigitClassifier
from .models._validate import check_model

__all__ = ["export"]

_Format = Literal["onnx", "torchscript"]
_FORMATS: tuple[str, ...] = get_args(_Format)

_INPUT_NAME = "pixels"
_OUTPUT_NAMES = ("logits", "probabilities")
_EXTRA_FILE = "digitrec.json"
_METADATA_PREFIX = "digitrec."
# torch.export specializes batch sizes 0 and 1 to constants, so trace with 2.
_EXAMPLE_BATCH = 2
_ONNX_EXTRA = 'pip install "digitrec[onnx]"'

_Guard = Callable[[torch.Tensor, int, int, int], torch.Tensor]


def _check_pixels(pixels: torch.Tensor, channels: int, height: int, width: int) -> torch.Tensor:
    # Compiled with torch.jit.script into the TorchScript export, where it runs on every
    # call: a trace records neither DigitClassifier.forward's checks nor its dtype branch,
    # so without it float 0-1 pixels would be scaled as if 0-255 and, for the CNN, any
    # image size accepted. (ONNX Runtime checks the dtype and the fixed sides itself.)
    if pixels.dtype != torch.uint8:
        raise ValueError(
            "digitrec: the exported model takes uint8 pixels (0-255); "
            "convert float pixels x in [0, 1] with (x * 255).round().to(torch.uint8)"
        )
    shape = pixels.shape
    if len(shape) != 4 or shape[1] != channels or shape[2] != height or shape[3] != width:
        raise ValueError(
            f"digitrec: expected pixels of shape (N, {channels}, {height}, {width}), got {shape}"
        )
    return pixels


class _Exported(nn.Module):
    """What is exported: uint8 pixels in, ``(logits, probabilities)`` out."""

    def __init__(self, model: DigitClassifier, guard: _Guard | None = None) -> None:
        super().__init__()
        self.model = model
        self.guard = guard

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.guard is not None:
            channels, height, width = self.model.input_shape
            pixels = self.guard(pixels, channels, height, width)
        logits = self.model(pixels)
        return logits, torch.softmax(logits / self.model.temperature, dim=1)


def _description(model: DigitClassifier) -> dict[str, Any]:
    config = model.config
    names = config.class_names or tuple(str(label) for label in range(config.num_classes))
    return {
        "config": config.to_dict(),
        "class_names": list(names),
        "temperature": float(model.temperature),
        "version": versions()["digitrec"],
        "torch_version": versions()["torch"],
    }


@contextlib.contextmanager
def _quiet_exporters() -> Iterator[None]:
    # The exporters report on things a DigitClassifier cannot hit (torchvision's detection
    # operators being unavailable, each time) and warn about torch's own internals (pytree
    # deprecations). Tracing warns that the shape checks in DigitClassifier.forward become
    # constants, which is what they should be: the input's C, H and W are fixed by design.
    # Errors still get through.
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        # TracerWarning is public (torch.jit's documentation lists it); the stubs leave it out.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # type: ignore[attr-defined]
        warnings.filterwarnings("ignore", message=r".*LeafSpec", category=FutureWarning)
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def _require_onnx() -> Any:
    try:
        onnx = importlib.import_module("onnx")
        importlib.import_module("onnxscript")  # the exporter below translates with it
    except ImportError as error:
        raise MissingDependencyError(
            f"ONNX export needs the onnx and onnxscript packages ({error}): {_ONNX_EXTRA}"
        ) from error
    if torch.__version__ < "2.5":  # a TorchVersion: compares as a version, not as text
        raise MissingDependencyError(
            f"ONNX export needs torch >= 2.5 (the torch.export-based ONNX exporter); this is "
            f"torch {torch.__version__}"
        )
    return onnx


def _onnx_bytes(
    onnx: Any,
    wrapper: _Exported,
    example: torch.Tensor,
    description: dict[str, Any],
    opset: int | None,
) -> bytes:
    with _quiet_exporters():
        # The torch.export-based ("dynamo") exporter: torch's default since 2.9 and the one
        # still maintained; dynamo=False, the TorchScript-based exporter, is deprecated
        # (it warns so on every call) and slated for removal. Both export these models
        # exactly, so nothing argues for the old one. The new one also checks the dynamic
        # batch: torch.export fails if anything in the model specializes on the batch size,
        # where the old one would silently bake it in. It is named explicitly so that
        # torch 2.5-2.8, whose default is still the old exporter, take the same path.
        program = torch.onnx.export(
            wrapper,
            (example,),
            dynamo=True,
            input_names=[_INPUT_NAME],
            output_names=list(_OUTPUT_NAMES),
            dynamic_shapes={_INPUT_NAME: {0: torch.export.Dim("N")}},
            opset_version=opset,
            verbose=False,
        )
    if program is None:  # only when writing to a file, which this call does not
        raise RuntimeError("torch.onnx.export returned no ONNX program")
    proto = program.model_proto
    produced = next(
        entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")
    )
    if opset is not None and produced != opset:
        # Below opset 18 the exporter converts its output down, and where that fails it
        # logs the failure and keeps opset 18: refuse rather than write another opset.
        raise InvalidInputError(
            f"could not export at opset {opset} (the exporter produced opset {produced}); "
            "use opset 18 or newer, or leave opset unset"
        )
    properties = {entry.key: entry.value for entry in proto.metadata_props}
    for key, value in description.items():
        properties[_METADATA_PREFIX + key] = value if isinstance(value, str) else json.dumps(value)
    onnx.helper.set_model_props(proto, properties)
    config = description["config"]
    proto.doc_string = (
        f"digitrec DigitClassifier ({config['arch']}): uint8 pixels "
        f"(N, {', '.join(map(str, config['input_shape']))}) -> logits, probabilities"
    )
    onnx.checker.check_model(proto)
    data: bytes = proto.SerializeToString()
    return data


def _torchscript_bytes(
    wrapper: _Exported, example: torch.Tensor, description: dict[str, Any]
) -> bytes:
    # Traced, not scripted: DigitClassifier.forward builds error messages and branches on
    # the dtype in plain Python, which TorchScript cannot compile. The trace keeps the
    # uint8 branch, and the scripted guard restores the checks at run time.
    wrapper.guard = torch.jit.script(_check_pixels)
    with _quiet_exporters():
        traced = torch.jit.trace(wrapper, (example,))  # type: ignore[no-untyped-call]
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer, _extra_files={_EXTRA_FILE: json.dumps(description)})
    return buffer.getvalue()


def export(
    model: DigitClassifier,
    path: str | os.PathLike[str],
    *,
    format: Literal["onnx", "torchscript"] = "onnx",
    opset: int | None = None,
) -> Path:
    """Export a model, preprocessing included, as an ONNX or TorchScript file.

    The exported program takes **raw uint8 pixels** (0-255) of shape ``(N, C, H, W)``,
    named ``pixels``, where the batch size ``N`` is free and ``C, H, W`` are the
    model's :attr:`~digitrec.models.DigitClassifier.input_shape`. (Float pixels in
    ``[0, 1]`` are for the Python API; the exported graph takes ``uint8`` only, so
    convert with ``(x * 255).round()``.) It normalizes them as the model does and
    returns two ``float32`` outputs of shape ``(N, num_classes)``:

    * ``logits``: what ``model(pixels)`` returns;
    * ``probabilities``: ``softmax(logits / temperature)`` with the model's calibrated
      temperature (see :func:`~digitrec.calibrate`), as :func:`~digitrec.predict_proba`
      gives them.

    The model itself is left untouched: a copy is exported, on the CPU, in evaluation mode.

    ``"onnx"`` writes an ONNX model with the input ``pixels`` and the outputs ``logits``
    and ``probabilities``, for ONNX Runtime or any other ONNX runtime. Its
    ``metadata_props`` record ``digitrec.config`` (the model's
    :class:`~digitrec.models.ModelConfig` as JSON), ``digitrec.class_names`` (a JSON
    list: the config's class names, or ``"0"``, ``"1"``, ... when it has none),
    ``digitrec.temperature``, ``digitrec.version`` and ``digitrec.torch_version``.
    It needs the ``onnx`` extra (``pip install "digitrec[onnx]"``) and torch >= 2.5.

    ``"torchscript"`` writes a traced TorchScript module for ``torch.jit.load`` (in
    Python or C++ LibTorch), returning the tuple ``(logits, probabilities)``; it raises
    an error for pixels that are not uint8 or not of the model's ``C, H, W``. The same
    record, as one JSON object with the keys ``config``, ``class_names``,
    ``temperature``, ``version`` and ``torch_version``, is its extra file
    ``digitrec.json``. PyTorch has deprecated TorchScript; prefer ONNX where you can.

    The file is written atomically, through a temporary file in the same folder that
    is renamed over ``path``: if anything fails, ``path`` keeps its old contents or
    stays absent.

    Args:
        model: The classifier to export.
        path: Where to write, conventionally ending in ``.onnx`` or ``.pt``.
        format: ``"onnx"`` or ``"torchscript"``.
        opset: For ONNX, the operator set to target; by default the exporter's
            (opset 18 or newer). Ignored for TorchScript.

    Returns:
        The path written.

    Raises:
        InvalidTypeError: If ``model`` is not a DigitClassifier, or ``opset`` not an int.
        InvalidInputError: For an unknown ``format``, or an ``opset`` the model cannot be
            exported at.
        MissingDependencyError: For ONNX, if ``onnx`` or ``onnxscript`` is not installed.

    Example:
        >>> import os, tempfile
        >>> import onnxruntime
        >>> model = digitrec.DigitClassifier(seed=0)
        >>> path = digitrec.export(model, os.path.join(tempfile.mkdtemp(), "mlp.onnx"))
        >>> session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        >>> pixels = digitrec.load_mnist("test")[:3].images.numpy()  # uint8, (3, 1, 28, 28)
        >>> logits, probabilities = session.run(None, {"pixels": pixels})
        >>> probabilities.shape, probabilities.sum(axis=1).round(4).tolist()
        ((3, 10), [1.0, 1.0, 1.0])
    """
    model = check_model(model)
    if format not in _FORMATS:
        raise InvalidInputError(f"format must be one of {_FORMATS}, got {format!r}")
    if opset is not None and (not isinstance(opset, int) or isinstance(opset, bool)):
        raise InvalidTypeError(f"opset must be an int or None, got {type(opset).__name__}")
    onnx = _require_onnx() if format == "onnx" else None  # before any work
    target = Path(path).expanduser()
    description = _description(model)
    exported = copy.deepcopy(model).to("cpu").eval().requires_grad_(False)
    wrapper = _Exported(exported).eval()
    example = torch.zeros((_EXAMPLE_BATCH, *exported.input_shape), dtype=torch.uint8)
    if format == "onnx":
        data = _onnx_bytes(onnx, wrapper, example, description, opset)
    else:
        data = _torchscript_bytes(wrapper, example, description)
    write_atomically(target, data)
    return target

"""The file format of model files and training checkpoints: safetensors with a JSON header.

The tensors are plain safetensors; the header's ``"digitrec"`` entry is a JSON
document. Nothing is unpickled, and a header nested deeper than any digitrec
writes is refused before anything walks it.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .._version import __version__
from ..errors import CheckpointError, DataNotFoundError

_HEADER_KEY = "digitrec"
# digitrec's own headers nest a dozen levels (optimizer states); JSON nested far
# deeper is hostile, and walking it would exhaust the stack.
MAX_HEADER_DEPTH = 64


def _nesting_depth(value: Any) -> int:
    """Return how deeply lists and dicts nest in ``value``, without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth)
            if depth > MAX_HEADER_DEPTH:
                return depth
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return deepest


def _safetensors() -> Any:
    import safetensors.torch

    return safetensors.torch


def tensors_to_bytes(tensors: Mapping[str, torch.Tensor], header: Mapping[str, Any]) -> bytes:
    """Serialize CPU-contiguous copies of ``tensors`` with ``header`` as JSON metadata."""
    plain = {name: tensor.detach().to("cpu").contiguous() for name, tensor in tensors.items()}
    data: bytes = _safetensors().save(plain, metadata={_HEADER_KEY: json.dumps(header)})
    return data


def read_file(
    path: str | os.PathLike[str], what: str
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return the tensors and the digitrec JSON header of a safetensors file, checked."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataNotFoundError(f"no {what} at {str(file)!r}")
    raw = file.read_bytes()
    try:
        tensors: dict[str, torch.Tensor] = _safetensors().load(raw)
        header_length = int.from_bytes(raw[:8], "little")
        metadata = json.loads(raw[8 : 8 + header_length]).get("__metadata__") or {}
    except Exception as error:  # safetensors reports bad files with its own error types
        raise CheckpointError(
            f"{str(file)!r} is not a safetensors file (a pickle, a truncated or corrupt "
            f"file?): {error}"
        ) from error
    if _HEADER_KEY not in metadata:
        raise CheckpointError(
            f"{str(file)!r} is a safetensors file but not a digitrec {what}: its header has "
            f"no {_HEADER_KEY!r} entry (keys: {sorted(metadata)})"
        )
    try:
        header = json.loads(metadata[_HEADER_KEY])
    except (json.JSONDecodeError, RecursionError) as error:
        raise CheckpointError(
            f"{str(file)!r} has an unreadable digitrec header: {type(error).__name__}: {error}"
        ) from error
    if _nesting_depth(header) > MAX_HEADER_DEPTH:
        raise CheckpointError(
            f"{str(file)!r} has a digitrec header nested more than {MAX_HEADER_DEPTH} levels "
            "deep; digitrec never writes one, so the file is corrupt or hostile"
        )
    if not isinstance(header, dict):
        raise CheckpointError(f"{str(file)!r} has a digitrec header that is not a JSON object")
    return tensors, header


def versions() -> dict[str, str]:
    """The versions of digitrec, torch and Python, as recorded in every file written."""
    return {
        "digitrec": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def pack(value: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    """Move the tensors of a nested structure into ``tensors``, leaving a JSON skeleton.

    Dicts keep their key types (optimizer states are keyed by int), so they are
    written as lists of ``[key, value]`` pairs.
    """
    if isinstance(value, torch.Tensor):
        tensors[prefix] = value
        return {"tensor": prefix}
    if isinstance(value, dict):
        return {
            "dict": [[key, pack(item, tensors, f"{prefix}.{key}")] for key, item in value.items()]
        }
    if isinstance(value, (list, tuple)):
        return {
            "list": [pack(item, tensors, f"{prefix}.{index}") for index, item in enumerate(value)]
        }
    return {"value": value}


def unpack(skeleton: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Rebuild what :func:`pack` took apart."""
    if "tensor" in skeleton:
        return tensors[skeleton["tensor"]]
    if "dict" in skeleton:
        return {key: unpack(item, tensors) for key, item in skeleton["dict"]}
    if "list" in skeleton:
        return [unpack(item, tensors) for item in skeleton["list"]]
    return skeleton["value"]

"""Device names in, available ``torch.device`` out."""

from __future__ import annotations

import torch

from .errors import DeviceUnavailableError, InvalidInputError, InvalidTypeError

#: A device name (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ``"auto"``) or a ``torch.device``.
DeviceLike = str | torch.device


def resolve_device(device: DeviceLike) -> torch.device:
    """Return the ``torch.device`` for ``device``, checking that this machine has it.

    ``"auto"`` picks CUDA, then MPS, then the CPU.
    """
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if not isinstance(device, (str, torch.device)):
        raise InvalidTypeError(f"device must be a str or torch.device, got {type(device).__name__}")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise InvalidInputError(
            f"device must be 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto', got {device!r}"
        ) from error
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceUnavailableError(
                f"device {device!r} asked for CUDA, but torch.cuda.is_available() is False on this "
                "machine; use device='cpu' or device='auto'"
            )
        if resolved.index is not None and resolved.index >= count:
            raise DeviceUnavailableError(
                f"device {device!r} does not exist: this machine has {count} CUDA device(s)"
            )
        if resolved.index is None:
            # An explicit index compares equal to the device of tensors placed there.
            resolved = torch.device("cuda", torch.cuda.current_device())
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailableError(
            f"device {device!r} asked for MPS, which this machine lacks; use 'cpu' or 'auto'"
        )
    elif resolved.type not in ("cpu", "cuda", "mps"):
        raise InvalidInputError(
            f"device must be 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto', got {device!r}"
        )
    return resolved

"""Joining a ``torchrun`` launch: rank, world size and this rank's device.

Training is distributed only when asked: when ``torchrun`` launched the process
(``WORLD_SIZE`` > 1 in the environment) or the caller passes
``Trainer(distributed=True)``. A process group that some other code happened to
initialize is never joined silently.
"""

from __future__ import annotations

import os

import torch

from ..errors import InvalidInputError


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def join(device: torch.device, distributed: bool | None) -> tuple[int, int, torch.device]:
    """Return (rank, world size, this rank's device), joining the process group if asked.

    ``distributed=None`` joins a ``torchrun`` launch and nothing else; ``True``
    joins the launch or a process group the caller initialized, and refuses to
    run without one; ``False`` trains in this process alone.
    """
    import torch.distributed as dist

    if distributed is False:
        return 0, 1, device
    available = dist.is_available()
    launched = launched_by_torchrun()
    if distributed is None and not (available and launched):
        return 0, 1, device
    if not available or not (launched or dist.is_initialized()):
        raise InvalidInputError(
            "distributed=True needs a torchrun launch (WORLD_SIZE > 1) or a process group "
            "initialized with torch.distributed.init_process_group"
        )
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device

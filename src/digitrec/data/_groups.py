"""Patient or study identifiers, one per image: checked once, stored as a read-only array."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import InvalidInputError, InvalidTypeError


def groups_array(groups: Any, count: int, what: str = "groups") -> np.ndarray[Any, Any]:
    """Return ``groups`` as a read-only 1-D numpy array of ``count`` strings or integers."""
    if isinstance(groups, torch.Tensor):
        groups = groups.detach().cpu().numpy()
    if isinstance(groups, (str, bytes)) or not hasattr(groups, "__len__"):
        raise InvalidTypeError(
            f"{what} must be a sequence or array of identifiers, one per image, "
            f"got {type(groups).__name__}"
        )
    array = np.array(groups, copy=True)
    if array.dtype == object and all(isinstance(item, str) for item in array.ravel()):
        array = array.astype(str)
    if array.dtype.kind not in "iuU":
        raise InvalidTypeError(
            f"{what} must hold strings or integers, got numpy dtype {array.dtype}"
        )
    if array.shape != (count,):
        raise InvalidInputError(
            f"{what} must have shape ({count},), one identifier per image, got {array.shape}"
        )
    array.setflags(write=False)
    return array

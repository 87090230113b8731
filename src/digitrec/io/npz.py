"""MedMNIST's ``.npz`` archives: ``{split}_images`` and ``{split}_labels`` per split.

Archives are opened with ``allow_pickle=False``: an object array, which could
run code when unpickled, is refused instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataFileError, DataNotFoundError

NPZ_SPLITS = ("train", "val", "test")


def read_npz_split(path: Path, split: str) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Return ``(images, labels)`` of one split of a MedMNIST-style archive, unpickling nothing."""
    file = path.expanduser()
    if not file.is_file():
        raise DataNotFoundError(f"no .npz file at {str(file)!r}")
    keys = (f"{split}_images", f"{split}_labels")
    try:
        loaded = np.load(file, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            # A bare .npy array: np.load returns the array itself, not an archive.
            raise DataFileError(
                f"{str(file)!r} holds a single numpy array, not an .npz archive with "
                f"{keys[0]!r} and {keys[1]!r}"
            )
        with loaded as archive:
            missing = [key for key in keys if key not in archive.files]
            if missing:
                raise DataFileError(
                    f"{str(file)!r} has no {missing} for split {split!r}; "
                    f"it holds {sorted(archive.files)}"
                )
            return archive[keys[0]], archive[keys[1]]
    except DataFileError:
        raise
    except Exception as error:
        # Untrusted archives fail in many ways (BadZipFile, NotImplementedError for
        # unknown zip versions, RuntimeError for encrypted members, zlib and struct
        # errors, and ValueError for object arrays under allow_pickle=False): each
        # means the file is not a usable .npz.
        raise DataFileError(
            f"{str(file)!r} is not a readable .npz of arrays: {type(error).__name__}: {error}"
        ) from error

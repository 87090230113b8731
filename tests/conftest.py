"""Shared fixtures: the bundled MNIST splits, loaded once per session."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

import digitrec


@pytest.fixture(scope="session")
def mnist_train() -> digitrec.ImageDataset:
    return digitrec.load_mnist("train")


@pytest.fixture(scope="session")
def mnist_test() -> digitrec.ImageDataset:
    return digitrec.load_mnist("test")


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as an IDX file (the format MNIST ships in)."""
    codes = {
        np.uint8: 0x08,
        np.int8: 0x09,
        np.int16: 0x0B,
        np.int32: 0x0C,
        np.float32: 0x0D,
        np.float64: 0x0E,
    }
    code = codes[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, *, compress: bool = False) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path

"""Shared fixtures: the bundled MNIST splits, loaded once per session."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Any, cast

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


#: Split sizes of :func:`synthetic_medical_arrays`, and how many of each are class 1.
SYNTHETIC_MEDICAL_SPLITS = {"train": (512, 320), "val": (160, 100), "test": (240, 150)}


def _blur(images: np.ndarray, passes: int) -> np.ndarray:
    """Box-blur ``(N, H, W)`` float images ``passes`` times (3x3, edges repeated)."""
    for _ in range(passes):
        padded = np.pad(images, ((0, 0), (1, 1), (1, 1)), mode="edge")
        # sum() of nine arrays is an array (typeshed also allows its start value, the int 0).
        total = cast(
            "np.ndarray",
            sum(
                padded[:, 1 + dy : padded.shape[1] - 1 + dy, 1 + dx : padded.shape[2] - 1 + dx]
                for dy in (-1, 0, 1)
                for dx in (-1, 0, 1)
            ),
        )
        images = total / 9.0
    return images


def synthetic_medical_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """A small, learnable, binary MedMNIST-style set: 28x28 "X-ray-like" ``uint8`` images.

    Every image is a smooth, blurred-noise background with a vertical brightness
    gradient (a chest-film look); class 1 (the "finding") adds a bright, soft blob of
    varying size, strength and position, faint in some images so that a model is
    not sure of all of them. The labels are ``(N, 1)`` like MedMNIST's; class 1 is
    the majority, as pneumonia is in PneumoniaMNIST. The arrays are the keys of a
    MedMNIST ``.npz`` file (``train_images``, ``train_labels``, ``val_images``, ...).
    """
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:28, 0:28].astype(np.float64)
    arrays: dict[str, np.ndarray] = {}
    for split, (size, positives) in SYNTHETIC_MEDICAL_SPLITS.items():
        labels = np.zeros(size, dtype=np.uint8)
        labels[rng.choice(size, positives, replace=False)] = 1
        images = _blur(rng.normal(0.0, 40.0, (size, 28, 28)), passes=2)
        images += (
            70.0 + rng.uniform(-15, 15, (size, 1, 1)) + rows[None] * rng.uniform(0, 2, (size, 1, 1))
        )
        for index in np.flatnonzero(labels):
            center_row, center_col = rng.uniform(7, 21, 2)
            radius = rng.uniform(2.5, 5.0)
            strength = rng.uniform(40.0, 130.0)
            distance = (rows - center_row) ** 2 + (cols - center_col) ** 2
            images[index] += strength * np.exp(-distance / (2 * radius**2))
        arrays[f"{split}_images"] = np.clip(np.rint(images), 0, 255).astype(np.uint8)
        arrays[f"{split}_labels"] = labels.reshape(-1, 1)
    return arrays


def write_synthetic_medical_npz(path: Path, seed: int = 0) -> Path:
    """Write :func:`synthetic_medical_arrays` to ``path`` as a MedMNIST ``.npz`` file."""
    # Typed Any: numpy 2's stubs would match the arrays against savez's bool allow_pickle.
    arrays: dict[str, Any] = synthetic_medical_arrays(seed)
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="session")
def synthetic_medical_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic PneumoniaMNIST stand-in, so that the medical path runs in any clone."""
    return write_synthetic_medical_npz(tmp_path_factory.mktemp("synthetic") / "synthetic.npz")

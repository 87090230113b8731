"""Fuzzing the file readers: whatever bytes come, only a DigitrecError comes out, quickly.

Each target runs a few hundred hypothesis-generated inputs, from random bytes and
from valid files with bytes flipped, inserted or cut. The counts are asserted
so that a run that tried nothing cannot pass; ``pytest -s`` prints them.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import struct
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import digitrec

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def _valid_files(folder: Path) -> dict[str, bytes]:
    buffer = io.BytesIO()
    np.savez(
        buffer, train_images=np.zeros((3, 8, 8), np.uint8), train_labels=np.array([[0], [1], [0]])
    )
    model = folder / "seed.safetensors"
    digitrec.save(
        digitrec.DigitClassifier("mlp", input_shape=(1, 8, 8), num_classes=2, seed=0), model
    )
    images = _idx(np.arange(3 * 8 * 8, dtype=np.uint8).reshape(3, 8, 8))
    return {
        "idx": images,
        "idx.gz": gzip.compress(images),
        "npz": buffer.getvalue(),
        "model": model.read_bytes(),
    }


@st.composite
def _mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """A valid file with bytes flipped, inserted, cut out or cut off."""
    content = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "insert", "cut", "truncate"]))
        position = draw(st.integers(0, max(0, len(content) - 1)))
        if kind == "flip" and content:
            content[position] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            content[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "cut":
            del content[position : position + draw(st.integers(1, 64))]
        else:
            del content[position:]
    return bytes(content)


def _fuzz(folder: Path, seed: bytes, read: Callable[[Path], object]) -> int:
    tried = 0
    path = folder / "fuzzed"

    @FUZZ
    @given(st.one_of(st.binary(max_size=4096), _mutated(seed)))
    def check(content: bytes) -> None:
        nonlocal tried
        tried += 1
        path.write_bytes(content)
        started = time.perf_counter()
        with contextlib.suppress(digitrec.DigitrecError):
            read(path)
        assert time.perf_counter() - started < 2.0

    check()
    print(f"\n{tried} inputs")
    return tried


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return _valid_files(tmp_path_factory.mktemp("seeds"))


@pytest.fixture(scope="module")
def labels_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("labels") / "labels.idx"
    path.write_bytes(_idx(np.array([0, 1, 0], dtype=np.uint8)))
    return path


@pytest.mark.parametrize("kind", ["idx", "idx.gz"])
def test_idx_reader(tmp_path: Path, seeds: dict[str, bytes], labels_file: Path, kind: str) -> None:
    assert (
        _fuzz(tmp_path, seeds[kind], lambda path: digitrec.ImageDataset.from_idx(path, labels_file))
        >= 200
    )


def test_npz_reader(tmp_path: Path, seeds: dict[str, bytes]) -> None:
    assert (
        _fuzz(tmp_path, seeds["npz"], lambda path: digitrec.ImageDataset.from_npz(path, "train"))
        >= 200
    )


def test_checkpoint_loader(tmp_path: Path, seeds: dict[str, bytes]) -> None:
    def read(path: Path) -> None:
        # A flip inside the weights still loads (the values are just different): fine.
        assert isinstance(digitrec.load(path), digitrec.DigitClassifier)

    assert _fuzz(tmp_path, seeds["model"], read) >= 200


def test_training_checkpoint_loader(
    tmp_path: Path, seeds: dict[str, bytes], mnist_test: digitrec.ImageDataset
) -> None:
    data = digitrec.ImageDataset(
        mnist_test.images[:32, :, :8, :8].contiguous(), mnist_test.labels[:32] % 2
    )

    def resume(path: Path) -> None:
        model = digitrec.DigitClassifier("mlp", input_shape=(1, 8, 8), num_classes=2, seed=0)
        digitrec.Trainer(model, epochs=1, batch_size=16, progress=False).fit(data, resume_from=path)

    run = tmp_path / "run.safetensors"
    model = digitrec.DigitClassifier("mlp", input_shape=(1, 8, 8), num_classes=2, seed=0)
    trainer = digitrec.Trainer(model, epochs=1, batch_size=16, progress=False)
    trainer.fit(data)
    trainer.save_checkpoint(run)
    assert _fuzz(tmp_path, run.read_bytes(), resume) >= 200

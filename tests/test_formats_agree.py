"""One digit, many file formats: a model trained on 8-bit images reads them all alike.

The same MNIST test digits are written as 8-bit PNG, 16-bit PNG and 12-bit DICOM
(rescale slope and intercept, a VOI window, MONOCHROME1, larger than the model's
input), read back with ``read_image`` and predicted through the prepared road by a
model trained on the 8-bit images. The issue's bar: accuracies within 2 points.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import digitrec

from .test_benchmarks import load

pydicom = pytest.importorskip("pydicom")
Image = pytest.importorskip("PIL.Image")

COUNT = 300


@pytest.fixture(scope="module")
def model(mnist_train: digitrec.ImageDataset) -> digitrec.DigitClassifier:
    trained = digitrec.DigitClassifier("mlp", seed=0)
    digitrec.Trainer(trained, epochs=3, progress=False).fit(mnist_train[:20000])
    return trained


def _digits(mnist_test: digitrec.ImageDataset) -> np.ndarray:
    """The first test digits at 56x56 (larger than the model's input), 0-1 floats."""
    small = mnist_test.images[:COUNT].float() / 255.0
    big = torch.nn.functional.interpolate(small, size=(56, 56), mode="bilinear")
    return big[:, 0].clamp(0, 1).numpy()


def test_eight_bit_sixteen_bit_and_dicom_agree(
    model: digitrec.DigitClassifier,
    mnist_test: digitrec.ImageDataset,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The file writers are the benchmark's (benchmarks/bench_formats.py), not a copy.
    bench = load("bench_formats", monkeypatch)
    digits = _digits(mnist_test)
    labels = mnist_test.labels[:COUNT]
    writers = {
        "png8": lambda p: bench.png(p, 8),
        "png16": lambda p: bench.png(p, 16),
        "dcm": bench.dicom,
    }
    accuracy = {}
    read_back = {}
    for name, write in writers.items():
        paths = []
        for index, pixels in enumerate(digits):
            path = tmp_path / f"{name}_{index:03d}.{name[:3]}"
            path.write_bytes(write(pixels))
            paths.append(path)
        read_back[name] = torch.stack([digitrec.read_image(path) for path in paths])
        predicted = digitrec.predict(model, paths)
        accuracy[name] = float((predicted == labels).float().mean())
    # The readers give the same pixels, to each format's precision.
    assert torch.allclose(read_back["png16"], read_back["png8"], atol=0.5 / 255 + 1e-6)
    assert torch.allclose(read_back["dcm"], read_back["png16"], atol=1.0 / 4095 + 1e-4)
    assert accuracy["png8"] > 0.85, accuracy
    assert abs(accuracy["png16"] - accuracy["png8"]) <= 0.02, accuracy
    assert abs(accuracy["dcm"] - accuracy["png8"]) <= 0.02, accuracy

"""`digitrec predict` and `digitrec explain` on real image files, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import digitrec
from digitrec._synthetic import render_photos
from digitrec.cli import main

Image = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def model_file(
    tmp_path_factory: pytest.TempPathFactory, mnist_train: digitrec.ImageDataset
) -> Path:
    model = digitrec.DigitClassifier("mlp", seed=0)
    digitrec.Trainer(model, epochs=3, progress=False).fit(mnist_train[:20000])
    return digitrec.save(model, tmp_path_factory.mktemp("model") / "mlp.safetensors")


def _photos(folder: Path, mnist_test: digitrec.ImageDataset, count: int) -> list[int]:
    folder.mkdir(parents=True, exist_ok=True)
    photos = render_photos(mnist_test.images[:count], seed=3)
    for index, photo in enumerate(photos):
        Image.fromarray(photo.numpy()).save(folder / f"digit{index:02d}.jpg", quality=90)
    return [int(label) for label in mnist_test.labels[:count]]


def test_predict_reads_photos_recursively_and_reports_bad_files(
    model_file: Path,
    mnist_test: digitrec.ImageDataset,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    labels = _photos(tmp_path / "scans" / "inner", mnist_test, 20)
    (tmp_path / "scans" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    status = main(["predict", str(model_file), str(tmp_path / "scans"), "--json"])
    captured = capsys.readouterr()
    assert status == 1  # one file could not be read
    assert "broken.png" in captured.err
    results = json.loads(captured.out)
    assert len(results) == 20
    right = sum(r["class_index"] == label for r, label in zip(results, labels, strict=True))
    assert right >= 17, results  # prepared as digits; stretched, about 2 of 20 would be right
    assert all(r["out_of_distribution"] is None for r in results)  # no statistics fitted


def test_predict_no_prepare_refuses_photos(
    model_file: Path, mnist_test: digitrec.ImageDataset, tmp_path: Path
) -> None:
    _photos(tmp_path, mnist_test, 1)
    assert main(["predict", str(model_file), str(tmp_path), "--no-prepare"]) == 1


def test_explain_writes_an_overlay(
    model_file: Path,
    mnist_test: digitrec.ImageDataset,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("captum")
    pytest.importorskip("matplotlib")
    labels = _photos(tmp_path, mnist_test, 1)
    output = tmp_path / "overlay.png"
    status = main(
        ["explain", str(model_file), str(tmp_path / "digit00.jpg"), "--output", str(output)]
    )
    assert status == 0
    assert f": {labels[0]} (probability" in capsys.readouterr().out
    with Image.open(output) as overlay:
        assert overlay.size[0] > 200
        assert np.asarray(overlay.convert("L")).std() > 10

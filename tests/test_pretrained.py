"""The bundled pretrained models: intact, as good as promised, and reproducible."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

import digitrec
from digitrec.models.bundled import PRETRAINED

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "make_pretrained.py"
# The targets.
TARGETS = {"mnist-cnn": 0.996, "mnist-mlp": 0.978}


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_bundled_file_matches_its_recorded_sha256(name: str) -> None:
    file_name, expected = PRETRAINED[name]
    data = (resources.files("digitrec") / "_weights" / file_name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == expected


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_pretrained_models_meet_their_targets(name: str, mnist_test: digitrec.ImageDataset) -> None:
    model = digitrec.pretrained(name)  # type: ignore[arg-type]
    metadata = digitrec.read_metadata(
        resources.files("digitrec") / "_weights" / PRETRAINED[name][0]  # type: ignore[arg-type]
    )["metadata"]
    assert metadata["test_metrics"]["accuracy"] >= TARGETS[name]
    assert metadata["train_sha256"] == digitrec.dataset_sha256(
        *(lambda d: (d.images, d.labels))(digitrec.load_mnist("train").split(5000, seed=0)[0])
    )
    assert model.config.prepare == "digits"
    assert model.ood is not None
    # The recorded accuracy is the model's: measure it again.
    accuracy = digitrec.evaluate_accuracy(model, mnist_test).accuracy
    assert accuracy == pytest.approx(metadata["test_metrics"]["accuracy"], abs=1e-9)


def test_a_corrupt_bundled_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import digitrec.models.bundled as module

    table = dict(PRETRAINED)
    table["mnist-mlp"] = (table["mnist-mlp"][0], "0" * 64)
    monkeypatch.setattr(module, "PRETRAINED", table)
    with pytest.raises(digitrec.ChecksumError, match="reinstall"):
        digitrec.pretrained("mnist-mlp")


def test_the_script_reproduces_the_mlp_bit_for_bit(tmp_path: Path) -> None:
    # Run as users run it (it pins the numerics and runs itself again), with another
    # thread count in the environment than the script's own.
    environment = os.environ | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "mnist-mlp", "--output", str(tmp_path)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    path = tmp_path / "mnist-mlp.safetensors"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == PRETRAINED["mnist-mlp"][1]
    assert digitrec.read_metadata(path)["metadata"]["numerics"]["MKL_CBWR"] == "COMPATIBLE"

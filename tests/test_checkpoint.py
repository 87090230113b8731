from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch

import digitrec
from digitrec.io import tensorfile as _files


@pytest.fixture(scope="module")
def trained_cnn(mnist_train: digitrec.ImageDataset) -> digitrec.DigitClassifier:
    model = digitrec.DigitClassifier("cnn", class_names=list("0123456789"), seed=0)
    digitrec.Trainer(model, epochs=1, progress=False).fit(mnist_train[:2000])
    digitrec.calibrate(model, mnist_train[50_000:51_000])
    return model


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_saved_model_predicts_bit_identically(
    tmp_path: Path,
    mnist_test: digitrec.ImageDataset,
    trained_cnn: digitrec.DigitClassifier,
    arch: str,
) -> None:
    model = trained_cnn if arch == "cnn" else digitrec.DigitClassifier("mlp", seed=3)
    path = digitrec.save(model, tmp_path / "model.safetensors", metadata={"purpose": "test"})
    restored = digitrec.load(path)
    assert restored.config == model.config
    assert float(restored.temperature) == float(model.temperature)
    assert not restored.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(restored.state_dict()[name], tensor), name
    batch = mnist_test[:500]
    assert torch.equal(
        digitrec.predict_proba(restored, batch), digitrec.predict_proba(model, batch)
    )
    header = digitrec.read_metadata(path)
    assert header["format"] == digitrec.MODEL_FORMAT
    assert header["metadata"] == {"purpose": "test"}
    assert header["versions"]["torch"] == torch.__version__
    assert header["versions"]["digitrec"] == digitrec.__version__


def test_metadata_records_training_and_data(
    tmp_path: Path, mnist_test: digitrec.ImageDataset
) -> None:
    model = digitrec.DigitClassifier(seed=0)
    trainer = digitrec.Trainer(model, epochs=1, progress=False)
    checksum = digitrec.dataset_sha256(mnist_test.images, mnist_test.labels)
    assert checksum == digitrec.dataset_sha256(mnist_test.images.clone(), mnist_test.labels.clone())
    assert checksum != digitrec.dataset_sha256(mnist_test.images, mnist_test.labels.flip(0))
    digitrec.save(
        model,
        tmp_path / "m.safetensors",
        metadata={"training": trainer.config.to_dict(), "test_sha256": checksum},
    )
    recorded = digitrec.read_metadata(tmp_path / "m.safetensors")["metadata"]
    assert recorded["training"] == json.loads(json.dumps(trainer.config.to_dict()))
    assert recorded["training"]["batch_size"] == 64
    assert recorded["test_sha256"] == checksum
    with pytest.raises(digitrec.InvalidInputError, match="JSON-serializable"):
        digitrec.save(model, tmp_path / "bad.safetensors", metadata={"tensor": torch.ones(1)})
    assert not (tmp_path / "bad.safetensors").exists()


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (self.marker, "pwned"))


def test_hostile_pickle_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    evil = tmp_path / "model.safetensors"
    evil.write_bytes(pickle.dumps({"state_dict": _Exploit(str(marker))}))
    torch_style = tmp_path / "model.pt"
    torch.save({"exploit": _Exploit(str(marker))}, torch_style)
    for path in (evil, torch_style):
        with pytest.raises(digitrec.CheckpointError, match="not a safetensors file"):
            digitrec.load(path)
    assert not marker.exists()


def test_truncated_and_foreign_files(tmp_path: Path) -> None:
    good = digitrec.save(digitrec.DigitClassifier(seed=0), tmp_path / "good.safetensors")
    data = good.read_bytes()
    (tmp_path / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(digitrec.CheckpointError, match="not a safetensors file"):
        digitrec.load(tmp_path / "truncated.safetensors")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(digitrec.CheckpointError):
        digitrec.load(tmp_path / "empty.safetensors")
    import safetensors.torch

    safetensors.torch.save_file(
        {"weight": torch.ones(2)}, tmp_path / "other.safetensors", metadata={"a": "b"}
    )
    with pytest.raises(digitrec.CheckpointError, match=r"not a digitrec model file.*'a'"):
        digitrec.load(tmp_path / "other.safetensors")
    with pytest.raises(digitrec.DataNotFoundError, match=r"nothing\.safetensors"):
        digitrec.load(tmp_path / "nothing.safetensors")


def _rewrite(path: Path, tensors: dict[str, torch.Tensor], header: dict[str, object]) -> None:
    path.write_bytes(_files.tensors_to_bytes(tensors, header))


def test_weights_that_do_not_fit_the_config(tmp_path: Path) -> None:
    path = digitrec.save(digitrec.DigitClassifier(seed=0), tmp_path / "m.safetensors")
    tensors, header = _files.read_file(path, "model file")
    header["config"]["num_classes"] = 5
    _rewrite(tmp_path / "classes.safetensors", tensors, header)
    with pytest.raises(
        digitrec.CheckpointError, match=r"do not fit.*5 classes.*network\.5\.weight"
    ):
        digitrec.load(tmp_path / "classes.safetensors")
    _, header = _files.read_file(path, "model file")
    del tensors["network.1.bias"]
    _rewrite(tmp_path / "missing.safetensors", tensors, header)
    with pytest.raises(digitrec.CheckpointError, match=r"missing \['network\.1\.bias'\]"):
        digitrec.load(tmp_path / "missing.safetensors")
    header["config"]["arch"] = "transformer"
    _rewrite(tmp_path / "arch.safetensors", tensors, header)
    with pytest.raises(digitrec.CheckpointError, match="invalid model config"):
        digitrec.load(tmp_path / "arch.safetensors")
    header["format"] = "digitrec.model/99"
    _rewrite(tmp_path / "future.safetensors", tensors, header)
    with pytest.raises(digitrec.CheckpointError, match=r"digitrec\.model/99"):
        digitrec.load(tmp_path / "future.safetensors")


def test_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = digitrec.save(digitrec.DigitClassifier(seed=0), tmp_path / "m.safetensors")
    before = path.read_bytes()

    def crash(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        digitrec.save(digitrec.DigitClassifier(seed=1), path)
    assert path.read_bytes() == before  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]  # no temporary left
    assert json.loads(json.dumps(digitrec.read_metadata(path)))["format"] == digitrec.MODEL_FORMAT


def test_a_header_claiming_a_huge_model_is_refused_before_allocating(tmp_path: Path) -> None:
    path = digitrec.save(digitrec.DigitClassifier(seed=0), tmp_path / "m.safetensors")
    tensors, header = _files.read_file(path, "model file")
    header["config"]["num_classes"] = 10**9
    header["config"]["input_shape"] = [3, 100_000, 100_000]
    _rewrite(tmp_path / "huge.safetensors", tensors, header)
    with pytest.raises(digitrec.CheckpointError, match="do not fit"):
        digitrec.load(tmp_path / "huge.safetensors")

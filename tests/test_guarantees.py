"""Guarantees documented in docs/errors.rst: determinism, silence, restored global state."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import digitrec


def test_cnn_runs_with_augmentation_are_bit_identical(mnist_train: digitrec.ImageDataset) -> None:
    data = mnist_train[:1024]
    runs = []
    for _ in range(2):
        model = digitrec.DigitClassifier("cnn", seed=5)
        history = digitrec.Trainer(model, epochs=2, seed=11, progress=False).fit(data)
        runs.append((history.train_loss, [t.clone() for t in model.state_dict().values()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))


def test_the_library_prints_nothing_unless_asked(
    mnist_train: digitrec.ImageDataset, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = mnist_train[:512]
    model = digitrec.DigitClassifier(seed=0)
    digitrec.Trainer(model, epochs=1, progress=False).fit(data, val=data)
    digitrec.evaluate_accuracy(model, data)
    digitrec.evaluate(model, data)
    digitrec.calibrate(model, data)
    digitrec.predict_proba(model, data)
    digitrec.predict_or_abstain(model, data, min_confidence=0.5)
    digitrec.get_predicted_label(model, data[0][0])
    digitrec.load(digitrec.save(model, tmp_path / "m.safetensors"))
    assert capsys.readouterr() == ("", "")


def test_global_torch_state_is_restored(mnist_train: digitrec.ImageDataset) -> None:
    data = mnist_train[:512]
    model = digitrec.DigitClassifier("cnn", seed=0).train()
    threads, rng, grad = torch.get_num_threads(), torch.get_rng_state(), torch.is_grad_enabled()
    digitrec.Trainer(model, epochs=1, num_threads=1, progress=False).fit(data)
    digitrec.calibrate(model, data)
    digitrec.evaluate(model, data)
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.is_grad_enabled() == grad
    assert model.training

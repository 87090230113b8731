"""The training steps: the fused MLP step must compute what autograd and torch.optim.SGD do."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

import digitrec
from digitrec.training import _engine, _fitting
from digitrec.training._objective import Objective


def _pair(
    weight_decay: float,
) -> tuple[
    digitrec.DigitClassifier, _engine.FusedMLPStep, digitrec.DigitClassifier, _engine.AutogradStep
]:
    fused_model = digitrec.DigitClassifier(seed=0)
    plain_model = digitrec.DigitClassifier(seed=0)
    linears = _engine.fusable_linears(fused_model)
    assert linears is not None
    fused = _engine.FusedMLPStep(fused_model, linears, 0.9, weight_decay)
    plain_sgd = _engine.make_optimizer(
        plain_model, "sgd", 0.05, 0.9, (0.9, 0.999), weight_decay, nesterov=False
    )
    plain = _engine.AutogradStep(plain_model, plain_sgd, Objective(multilabel=False), None)
    return fused_model, fused, plain_model, plain


@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_fused_step_matches_autograd_sgd(
    mnist_train: digitrec.ImageDataset, weight_decay: float
) -> None:
    fused_model, fused, plain_model, plain = _pair(weight_decay)
    images, labels = mnist_train.images[:640], mnist_train.labels[:640]
    for start in range(0, 640, 64):
        batch = slice(start, start + 64 - (start // 64) % 3)  # uneven batch sizes too
        lr = 0.05 * (1 - start / 640)
        fused_loss = fused(images[batch], labels[batch], lr)
        plain_loss = plain(images[batch], labels[batch], lr)
        torch.testing.assert_close(fused_loss, plain_loss, rtol=1e-5, atol=1e-4)
    mine: torch.Tensor
    for mine, reference in zip(fused_model.parameters(), plain_model.parameters(), strict=True):
        torch.testing.assert_close(mine, reference, rtol=1e-4, atol=1e-5)
    # The momentum buffers line up with model.parameters(), as torch.optim.SGD's state does.
    for mine, reference in zip(fused.momentum_buffers, plain_model.parameters(), strict=True):
        theirs = plain.optimizer.state[reference]["momentum_buffer"]
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)


def test_fused_training_does_not_import_dynamo() -> None:
    # Building a torch optimizer imports torch._dynamo (seconds); the fused path must not.
    code = (
        "import sys, digitrec\n"
        "data = digitrec.load_mnist('test')[:256]\n"
        "digitrec.Trainer(digitrec.DigitClassifier(), epochs=1, progress=False).fit(data)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_trainer_uses_the_fused_step_only_where_it_applies() -> None:
    def step_type(model: digitrec.DigitClassifier, **settings: object) -> type:
        trainer = digitrec.Trainer(model, progress=False, **settings)  # type: ignore[arg-type]
        weights = None if trainer.config.class_weights is None else torch.ones(10)
        objective = Objective(model.task == "multilabel", weights)
        step = _fitting.make_step(model, trainer.config, None, objective, torch.device("cpu"))
        return type(step)

    assert step_type(digitrec.DigitClassifier("mlp")) is _engine.FusedMLPStep
    assert (
        step_type(digitrec.DigitClassifier("mlp"), optimizer="adam", lr=1e-3)
        is _engine.AutogradStep
    )
    assert step_type(digitrec.DigitClassifier("mlp"), augment=True) is _engine.AutogradStep
    assert step_type(digitrec.DigitClassifier("cnn")) is _engine.AutogradStep
    # Class weights and BCE are autograd's: the fused step computes plain cross-entropy.
    assert step_type(digitrec.DigitClassifier("mlp"), class_weights="balanced") is (
        _engine.AutogradStep
    )
    assert step_type(digitrec.DigitClassifier("mlp", task="multilabel")) is _engine.AutogradStep


def test_fusable_linears_recognises_only_linear_relu_stacks() -> None:
    assert len(_engine.fusable_linears(digitrec.DigitClassifier("mlp")) or []) == 3
    assert _engine.fusable_linears(digitrec.DigitClassifier("cnn")) is None


def test_learning_rate_schedules() -> None:
    total, warmup = 100, 10
    rates = [_engine.learning_rate(0.1, "cosine", step, total, warmup) for step in range(total)]
    assert rates[0] == pytest.approx(0.01)
    assert rates[warmup - 1] == pytest.approx(0.1)
    assert rates[warmup] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(rates[warmup:], rates[warmup + 1 :], strict=False))
    assert rates[-1] < 0.001
    halfway = warmup + (total - warmup) // 2
    assert rates[halfway] == pytest.approx(0.05, rel=0.02)
    assert [_engine.learning_rate(0.1, "constant", s, total, 0) for s in (0, 50, 99)] == [0.1] * 3


def test_random_affine_keeps_shape_range_and_is_seeded(mnist_test: digitrec.ImageDataset) -> None:
    pixels = mnist_test.images[:32].float() / 255
    first = _engine.random_affine(pixels, torch.Generator().manual_seed(0))
    again = _engine.random_affine(pixels, torch.Generator().manual_seed(0))
    other = _engine.random_affine(pixels, torch.Generator().manual_seed(1))
    assert first.shape == pixels.shape
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert float(first.min()) >= 0.0
    assert float(first.max()) <= 1.0 + 1e-6
    # Mild transforms: the ink stays roughly where it was and about as much of it.
    assert math.isclose(float(first.sum()), float(pixels.sum()), rel_tol=0.15)

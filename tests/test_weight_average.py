"""TrainConfig.ema_decay: an exponential moving average of the weights ends training."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

import digitrec
from digitrec.training._engine import AutogradStep, FusedMLPStep, Step
from digitrec.training.callbacks import TrainerLike

DECAY = 0.9


class _Interrupt(digitrec.Callback):
    def on_epoch_end(self, trainer: TrainerLike, history: digitrec.History) -> None:
        if history.epochs == 1:
            raise KeyboardInterrupt


class _RecordingStep:
    """A training step that calls ``record`` after each update of the step it wraps."""

    def __init__(self, step: Step, record: Callable[[], None]) -> None:
        self._step = step
        self._record = record

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, lr: float) -> torch.Tensor:
        loss = self._step(images, labels, lr)
        self._record()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return self._step.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._step.load_state_dict(state)


class _RecordSteps(digitrec.Callback):
    """Keep a float64 copy of the model's state after every optimizer step."""

    def __init__(self) -> None:
        self.states: list[dict[str, torch.Tensor]] = []

    def on_fit_start(self, trainer: TrainerLike, history: digitrec.History) -> None:
        assert isinstance(trainer, digitrec.Trainer)
        run = trainer._run
        assert run is not None

        def record() -> None:
            self.states.append(
                {k: v.detach().double().clone() for k, v in trainer.model.state_dict().items()}
            )

        run.update = _RecordingStep(run.update, record)


@pytest.fixture(scope="module")
def small(mnist_train: digitrec.ImageDataset) -> digitrec.ImageDataset:
    return mnist_train[:640]


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def _recipe(arch: str, decay: float | None) -> digitrec.TrainConfig:
    return replace(
        digitrec.RECIPES[arch], epochs=2, batch_size=64, seed=3, num_threads=1, ema_decay=decay
    )


@pytest.mark.parametrize(("arch", "step_type"), [("mlp", FusedMLPStep), ("cnn", AutogradStep)])
def test_the_model_ends_with_the_average_of_the_steps(
    small: digitrec.ImageDataset, arch: digitrec.Architecture, step_type: type
) -> None:
    # The same run without the average gives the weights of every step; the
    # average computed from them by hand in float64 is what ema_decay must leave.
    recorder = _RecordSteps()
    plain = digitrec.DigitClassifier(arch, seed=0)
    digitrec.Trainer(plain, recipe=_recipe(arch, None), progress=False, callbacks=[recorder]).fit(
        small
    )
    assert len(recorder.states) == 20
    expected = dict(recorder.states[0])
    for state in recorder.states[1:]:
        expected = {k: DECAY * expected[k] + (1 - DECAY) * state[k] for k in state}

    model = digitrec.DigitClassifier(arch, seed=0)
    trainer = digitrec.Trainer(model, recipe=_recipe(arch, DECAY), progress=False)
    trainer.fit(small)
    assert isinstance(trainer._run.update, step_type)  # type: ignore[union-attr]
    last = _state(plain)
    averaged = _state(model)
    for name, tensor in averaged.items():
        if tensor.is_floating_point():
            assert torch.allclose(tensor.double(), expected[name], rtol=1e-5, atol=1e-6), name
        else:  # batch normalization's counters stay counts
            assert torch.equal(tensor, last[name]), name
    moved = [
        name
        for name, tensor in averaged.items()
        if tensor.is_floating_point() and not torch.equal(tensor, last[name])
    ]
    assert any(name.endswith("weight") for name in moved)
    if arch == "cnn":
        assert any(name.endswith("running_mean") for name in moved)  # buffers averaged too


def test_same_seed_gives_bit_identical_averages(small: digitrec.ImageDataset) -> None:
    runs = []
    for _ in range(2):
        model = digitrec.DigitClassifier("cnn", seed=1)
        digitrec.Trainer(model, recipe=_recipe("cnn", 0.99), progress=False).fit(small)
        runs.append(_state(model))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_resume_restores_the_average(small: digitrec.ImageDataset, tmp_path: Path) -> None:
    recipe = _recipe("cnn", 0.95)
    reference = digitrec.DigitClassifier("cnn", seed=0)
    digitrec.Trainer(reference, recipe=recipe, progress=False).fit(small)

    path = tmp_path / "run.safetensors"
    interrupted = digitrec.DigitClassifier("cnn", seed=0)
    callbacks = [digitrec.Checkpoint(path), _Interrupt()]
    with pytest.raises(KeyboardInterrupt):
        digitrec.Trainer(interrupted, recipe=recipe, progress=False, callbacks=callbacks).fit(small)
    fresh = digitrec.DigitClassifier("cnn", seed=7)
    digitrec.Trainer(fresh, recipe=recipe, progress=False).fit(small, resume_from=path)
    for name, tensor in _state(reference).items():
        assert torch.equal(fresh.state_dict()[name], tensor), name


def test_the_setting_is_recorded_and_checked() -> None:
    config = replace(digitrec.RECIPES["cnn"], ema_decay=0.999)
    assert config.to_dict()["ema_decay"] == 0.999
    assert digitrec.RECIPES["cnn"].to_dict()["ema_decay"] is None
    for bad in (1.0, -0.1, float("nan"), "0.9"):
        with pytest.raises(digitrec.InvalidInputError, match="ema_decay"):
            replace(digitrec.RECIPES["cnn"], ema_decay=bad)  # type: ignore[arg-type]

"""Callbacks, training checkpoints and bit-identical resume."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch

import digitrec
from digitrec.training import _engine
from digitrec.training.callbacks import TrainerLike


class _InterruptAfter(digitrec.Callback):
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, trainer: TrainerLike, history: digitrec.History) -> None:
        if history.epochs == self.epochs:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def small(mnist_train: digitrec.ImageDataset) -> digitrec.ImageDataset:
    return mnist_train[:1500]


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_resume_matches_an_uninterrupted_run_bit_for_bit(
    small: digitrec.ImageDataset, tmp_path: Path, arch: digitrec.Architecture
) -> None:
    settings = {"epochs": 3, "batch_size": 100, "seed": 4, "progress": False}
    reference = digitrec.DigitClassifier(arch, seed=0)
    expected = digitrec.Trainer(reference, **settings).fit(small)  # type: ignore[arg-type]

    path = tmp_path / "run.safetensors"
    interrupted = digitrec.DigitClassifier(arch, seed=0)
    trainer = digitrec.Trainer(
        interrupted,
        callbacks=[digitrec.Checkpoint(path), _InterruptAfter(2)],
        **settings,  # type: ignore[arg-type]
    )
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(small)
    assert json.loads(json.dumps(_header(path)))["epoch"] == 2

    fresh = digitrec.DigitClassifier(
        arch, seed=123
    )  # other initial weights: all must come from the file
    resumed = digitrec.Trainer(fresh, **settings).fit(small, resume_from=path)  # type: ignore[arg-type]
    assert resumed.train_loss == expected.train_loss
    for name, tensor in _weights(reference).items():
        assert torch.equal(fresh.state_dict()[name], tensor), name


def _header(path: Path) -> dict[str, object]:
    from digitrec.io import tensorfile as _files

    return _files.read_file(path, "training checkpoint")[1]


def test_interrupt_mid_epoch_keeps_the_last_complete_checkpoint(
    small: digitrec.ImageDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run.safetensors"
    model = digitrec.DigitClassifier(seed=0)
    trainer = digitrec.Trainer(
        model, epochs=3, batch_size=100, progress=False, callbacks=[digitrec.Checkpoint(path)]
    )
    steps = {"count": 0}
    real_call = _engine.FusedMLPStep.__call__

    def flaky(
        self: _engine.FusedMLPStep, images: torch.Tensor, labels: torch.Tensor, lr: float
    ) -> torch.Tensor:
        steps["count"] += 1
        if steps["count"] == 15 + 7:  # epoch 2 of 15-step epochs, mid-way
            raise KeyboardInterrupt
        return real_call(self, images, labels, lr)

    monkeypatch.setattr(_engine.FusedMLPStep, "__call__", flaky)
    threads = torch.get_num_threads()
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(small)
    assert torch.get_num_threads() == threads  # global state restored even so
    assert _header(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.safetensors"]
    monkeypatch.setattr(_engine.FusedMLPStep, "__call__", real_call)
    resumed = digitrec.DigitClassifier(seed=9)  # other weights: all must come from the file
    history = digitrec.Trainer(resumed, epochs=3, batch_size=100, progress=False).fit(
        small, resume_from=path
    )
    # Resuming from the end of epoch 1 gives the uninterrupted run, bit for bit.
    reference = digitrec.DigitClassifier(seed=0)
    expected = digitrec.Trainer(reference, epochs=3, batch_size=100, progress=False).fit(small)
    assert history.epochs == 3
    assert history.train_loss == expected.train_loss
    for name, tensor in _weights(reference).items():
        assert torch.equal(resumed.state_dict()[name], tensor), name


def test_resume_refuses_what_does_not_belong(small: digitrec.ImageDataset, tmp_path: Path) -> None:
    path = tmp_path / "run.safetensors"
    digitrec.Trainer(
        digitrec.DigitClassifier(seed=0),
        epochs=1,
        progress=False,
        callbacks=[digitrec.Checkpoint(path)],
    ).fit(small)
    other_settings = digitrec.Trainer(
        digitrec.DigitClassifier(seed=0), epochs=1, lr=0.01, progress=False
    )
    with pytest.raises(digitrec.CheckpointError, match=r"training settings differ in \['lr'\]"):
        other_settings.fit(small, resume_from=path)
    same = digitrec.Trainer(digitrec.DigitClassifier(seed=0), epochs=1, progress=False)
    with pytest.raises(digitrec.CheckpointError, match="different data"):
        same.fit(small[:1000], resume_from=path)
    other_model = digitrec.Trainer(
        digitrec.DigitClassifier(num_classes=12), epochs=1, progress=False
    )
    with pytest.raises(digitrec.CheckpointError, match="model differ"):
        other_model.fit(small, resume_from=path)
    model_file = digitrec.save(digitrec.DigitClassifier(seed=0), tmp_path / "model.safetensors")
    with pytest.raises(digitrec.CheckpointError, match="not a training checkpoint"):
        same.fit(small, resume_from=model_file)
    with pytest.raises(digitrec.InvalidInputError, match="completed an epoch"):
        digitrec.Trainer(digitrec.DigitClassifier()).save_checkpoint(tmp_path / "x.safetensors")


class _RecordCheckpointEpoch(digitrec.Callback):
    """After each epoch (and after the Checkpoint before it), note the epoch on file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: list[object] = []

    def on_epoch_end(self, trainer: TrainerLike, history: digitrec.History) -> None:
        self.seen.append(_header(self.path)["epoch"] if self.path.exists() else None)


def test_checkpoint_every(small: digitrec.ImageDataset, tmp_path: Path) -> None:
    path = tmp_path / "run.safetensors"
    record = _RecordCheckpointEpoch(path)
    digitrec.Trainer(
        digitrec.DigitClassifier(seed=0),
        epochs=5,
        progress=False,
        callbacks=[digitrec.Checkpoint(path, every=2), record],
    ).fit(small)
    # Written after epochs 2 and 4, and after the last epoch, which is always written.
    assert record.seen == [None, 2, 2, 4, 5]
    assert _header(path)["epoch"] == 5
    with pytest.raises(digitrec.InvalidInputError, match="every"):
        digitrec.Checkpoint(path, every=0)


def test_early_stopping_stops_and_restores_the_best(
    small: digitrec.ImageDataset, mnist_test: digitrec.ImageDataset
) -> None:
    stop = digitrec.EarlyStopping(
        patience=1, min_delta=0.5
    )  # nothing gains 50 points: stop at once
    model = digitrec.DigitClassifier(seed=0)
    history = digitrec.Trainer(model, epochs=10, progress=False, callbacks=[stop]).fit(
        small, val=mnist_test[:500]
    )
    assert history.epochs == 2
    assert stop.stopped_epoch == 2
    assert stop.best_epoch == 1
    assert digitrec.evaluate_accuracy(model, mnist_test[:500]).accuracy == pytest.approx(
        history.val_accuracy[0]
    )
    with pytest.raises(digitrec.InvalidInputError, match="fit\\(train, val\\)"):
        digitrec.Trainer(model, epochs=1, progress=False, callbacks=[digitrec.EarlyStopping()]).fit(
            small
        )
    with pytest.raises(digitrec.InvalidTypeError, match="Callback"):
        digitrec.Trainer(model, callbacks=[print])  # type: ignore[list-item]


def test_metrics_logger_writes_json_lines(
    small: digitrec.ImageDataset, mnist_test: digitrec.ImageDataset
) -> None:
    log = io.StringIO()
    history = digitrec.Trainer(
        digitrec.DigitClassifier(seed=0),
        epochs=2,
        progress=False,
        callbacks=[digitrec.MetricsLogger(log)],
    ).fit(small, val=mnist_test[:300])
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2]
    assert [line["train_loss"] for line in lines] == history.train_loss
    assert [line["val_accuracy"] for line in lines] == history.val_accuracy


_STALLING = {"epochs": 12, "batch_size": 100, "lr": 0.3, "lr_schedule": "constant", "seed": 4}


@pytest.mark.parametrize("interrupt_at", [4, 5])
@pytest.mark.parametrize("early_stopping_first", [True, False])
def test_resumed_early_stopping_ends_as_an_uninterrupted_run(
    small: digitrec.ImageDataset,
    mnist_test: digitrec.ImageDataset,
    tmp_path: Path,
    interrupt_at: int,
    early_stopping_first: bool,
) -> None:
    val = mnist_test[:500]
    stop = digitrec.EarlyStopping(monitor="val_loss", patience=2)
    reference = digitrec.DigitClassifier("mlp", seed=0)
    expected = digitrec.Trainer(
        reference,
        progress=False,
        callbacks=[stop],
        **_STALLING,  # type: ignore[arg-type]
    ).fit(small, val)
    # The run this test needs: the best epoch, then the interruption, then the stop.
    assert stop.best_epoch < 4
    assert stop.stopped_epoch == 5

    path = tmp_path / "run.safetensors"

    def callbacks(*extra: digitrec.Callback) -> list[digitrec.Callback]:
        watching = digitrec.EarlyStopping(monitor="val_loss", patience=2)
        pair = [watching, digitrec.Checkpoint(path)]
        return [*(pair if early_stopping_first else pair[::-1]), *extra]

    interrupted = digitrec.DigitClassifier("mlp", seed=0)
    with pytest.raises(KeyboardInterrupt):
        digitrec.Trainer(
            interrupted,
            progress=False,
            callbacks=callbacks(_InterruptAfter(interrupt_at)),
            **_STALLING,  # type: ignore[arg-type]
        ).fit(small, val)

    fresh = digitrec.DigitClassifier("mlp", seed=123)
    resumed_callbacks = callbacks()
    history = digitrec.Trainer(
        fresh,
        progress=False,
        callbacks=resumed_callbacks,
        **_STALLING,  # type: ignore[arg-type]
    ).fit(small, val, resume_from=path)
    [resumed_stop] = [c for c in resumed_callbacks if isinstance(c, digitrec.EarlyStopping)]
    assert history.val_loss == expected.val_loss
    assert (resumed_stop.best_epoch, resumed_stop.stopped_epoch) == (
        stop.best_epoch,
        stop.stopped_epoch,
    )
    for name, tensor in _weights(reference).items():
        assert torch.equal(fresh.state_dict()[name], tensor), name


def test_a_resumed_save_best_only_checkpoint_keeps_the_best_epoch(
    small: digitrec.ImageDataset, mnist_test: digitrec.ImageDataset, tmp_path: Path
) -> None:
    val = mnist_test[:500]

    def best(path: Path) -> digitrec.Checkpoint:
        return digitrec.Checkpoint(path, monitor="val_loss", save_best_only=True)

    reference = tmp_path / "reference.safetensors"
    expected = digitrec.Trainer(
        digitrec.DigitClassifier("mlp", seed=0),
        progress=False,
        callbacks=[best(reference)],
        **_STALLING,  # type: ignore[arg-type]
    ).fit(small, val)
    best_epoch = 1 + expected.val_loss.index(min(expected.val_loss))
    assert _header(reference)["epoch"] == best_epoch < 4  # the best comes before the interruption

    kept, last = tmp_path / "best.safetensors", tmp_path / "last.safetensors"
    with pytest.raises(KeyboardInterrupt):
        digitrec.Trainer(
            digitrec.DigitClassifier("mlp", seed=0),
            progress=False,
            callbacks=[best(kept), digitrec.Checkpoint(last), _InterruptAfter(4)],
            **_STALLING,  # type: ignore[arg-type]
        ).fit(small, val)
    digitrec.Trainer(
        digitrec.DigitClassifier("mlp", seed=0),
        progress=False,
        callbacks=[best(kept)],
        **_STALLING,  # type: ignore[arg-type]
    ).fit(small, val, resume_from=last)
    assert _header(kept)["epoch"] == best_epoch


def test_early_stopping_state_that_does_not_fit_is_refused(
    small: digitrec.ImageDataset, mnist_test: digitrec.ImageDataset, tmp_path: Path
) -> None:
    stop = digitrec.EarlyStopping(monitor="val_loss", patience=2)
    bad_states: list[dict[str, object]] = [
        {"best_epoch": -1},
        {"best_epoch": 1, "weights": {"w": 1}},
        {"weights": {}},
    ]
    for bad in bad_states:
        with pytest.raises(digitrec.CheckpointError, match="EarlyStopping state"):
            stop.load_state_dict(bad)
    path = tmp_path / "run.safetensors"
    with pytest.raises(KeyboardInterrupt):
        digitrec.Trainer(
            digitrec.DigitClassifier("mlp", seed=0),
            progress=False,
            callbacks=[stop, digitrec.Checkpoint(path), _InterruptAfter(4)],
            **_STALLING,  # type: ignore[arg-type]
        ).fit(small[:1500], mnist_test[:500])
    assert (
        stop.state_dict()["weights"].keys() == digitrec.DigitClassifier("mlp").state_dict().keys()
    )
    # A failed resume leaves the model as it was.
    model = digitrec.DigitClassifier("mlp", seed=7)
    before = _weights(model)
    wrong = digitrec.EarlyStopping(monitor="val_loss", patience=2)
    wrong.load_state_dict = lambda state: (_ for _ in ()).throw(  # type: ignore[method-assign]
        digitrec.CheckpointError("EarlyStopping state refused")
    )
    with pytest.raises(digitrec.CheckpointError, match="incomplete training checkpoint"):
        digitrec.Trainer(
            model,
            progress=False,
            callbacks=[wrong],
            **_STALLING,  # type: ignore[arg-type]
        ).fit(small, mnist_test[:500], resume_from=path)
    for name, tensor in before.items():
        assert torch.equal(model.state_dict()[name], tensor), name

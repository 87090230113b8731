"""Regression tests for the correctness fixes of the house issue; each failed before its fix.

Each test names the defect it pins. They live together because each touches a
different module and they are read as one list in the changelog.
"""

from __future__ import annotations

import gzip
import os
import stat
import struct
import threading
import tracemalloc
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
import torch

import digitrec
from digitrec.io import tensorfile
from digitrec.training import _engine


@pytest.fixture(scope="module")
def small(mnist_train: digitrec.ImageDataset) -> digitrec.ImageDataset:
    return mnist_train[:1280]


_Layer = TypeVar("_Layer", bound=torch.nn.Module)


def _layer(model: digitrec.DigitClassifier, index: int, kind: type[_Layer]) -> _Layer:
    """The layer at ``index`` of the model's built-in ``nn.Sequential`` network."""
    assert isinstance(model.network, torch.nn.Sequential)
    layer = model.network[index]
    assert isinstance(layer, kind)
    return layer


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


def test_early_stopping_forgets_an_earlier_fit(mnist_train: digitrec.ImageDataset) -> None:
    stop = digitrec.EarlyStopping(patience=2)
    data = mnist_train[:1500]
    first = digitrec.DigitClassifier(seed=0)
    digitrec.Trainer(first, epochs=3, progress=False, callbacks=[stop]).fit(
        data[:1000], val=data[1000:]
    )
    assert stop.best_accuracy > 0.5
    # A model that learns nothing (lr tiny): its best is its own first epoch, whatever
    # the earlier run reached.
    second = digitrec.DigitClassifier(seed=1)
    digitrec.Trainer(second, epochs=3, lr=1e-9, progress=False, callbacks=[stop]).fit(
        data[:1000], val=data[1000:]
    )
    assert stop.best_accuracy < 0.5
    assert stop.best_epoch == 1


def test_recipe_seed_is_kept_unless_overridden() -> None:
    recipe = digitrec.TrainConfig(epochs=1, batch_size=32, optimizer="sgd", lr=0.1, seed=5)
    assert digitrec.Trainer(digitrec.DigitClassifier(), recipe=recipe).config.seed == 5
    assert digitrec.Trainer(digitrec.DigitClassifier(), recipe=recipe, seed=7).config.seed == 7


def test_adam_takes_its_betas_not_sgd_momentum() -> None:
    config = digitrec.TrainConfig(epochs=1, batch_size=32, optimizer="adam", lr=1e-3)
    assert config.betas == (0.9, 0.999)
    model = digitrec.DigitClassifier(seed=0)
    optimizer = _engine.make_optimizer(
        model, "adam", 1e-3, config.momentum, config.betas, 0.0, False
    )
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.999)
    with pytest.raises(digitrec.InvalidInputError, match="momentum applies to SGD only"):
        digitrec.TrainConfig(epochs=1, batch_size=32, optimizer="adamw", lr=1e-3, momentum=0.9)
    with pytest.raises(digitrec.InvalidInputError, match="betas"):
        digitrec.TrainConfig(epochs=1, batch_size=32, optimizer="adam", lr=1e-3, betas=(1.0, 0.5))


def test_resume_under_another_world_size_is_refused(
    small: digitrec.ImageDataset, tmp_path: Path
) -> None:
    path = tmp_path / "run.safetensors"
    trainer = digitrec.Trainer(digitrec.DigitClassifier(seed=0), epochs=2, progress=False)
    trainer.fit(small[:640])
    trainer.save_checkpoint(path)
    tensors, header = tensorfile.read_file(path, "training checkpoint")
    assert header["world_size"] == 1
    header["world_size"] = 2
    path.write_bytes(tensorfile.tensors_to_bytes(tensors, header))
    again = digitrec.Trainer(digitrec.DigitClassifier(seed=0), epochs=2, progress=False)
    with pytest.raises(digitrec.CheckpointError, match="2 process"):
        again.fit(small[:640], resume_from=path)


def _train_in_a_group(rank: int, folder: str, distributed: bool | None) -> None:
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=2
    )
    try:
        data = digitrec.load_mnist("test")[:256]
        trainer = digitrec.Trainer(
            digitrec.DigitClassifier(seed=0), epochs=1, progress=False, distributed=distributed
        )
        trainer.fit(data)
        Path(folder, f"rank{rank}").write_text(str(trainer.world_size))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize(("distributed", "world_size"), [(None, "1"), (True, "2")])
def test_fit_joins_a_process_group_only_when_asked(
    tmp_path: Path, distributed: bool | None, world_size: str
) -> None:
    from torch.multiprocessing.spawn import spawn

    spawn(_train_in_a_group, args=(str(tmp_path), distributed), nprocs=2)  # type: ignore[no-untyped-call]
    assert [(tmp_path / f"rank{r}").read_text() for r in (0, 1)] == [world_size] * 2


def test_distributed_true_needs_a_group(small: digitrec.ImageDataset) -> None:
    model = digitrec.DigitClassifier(seed=0)
    with pytest.raises(digitrec.InvalidInputError, match="distributed=True needs"):
        digitrec.Trainer(model, epochs=1, progress=False, distributed=True).fit(small[:256])


class _Doubled(digitrec.DigitClassifier):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return super().forward(images) * 2


def test_fused_step_steps_aside_for_frozen_layers_and_overrides(
    small: digitrec.ImageDataset,
) -> None:
    frozen = digitrec.DigitClassifier(seed=0)
    _layer(frozen, 1, torch.nn.Linear).weight.requires_grad_(False)
    before = _layer(frozen, 1, torch.nn.Linear).weight.detach().clone()
    trainer = digitrec.Trainer(frozen, epochs=1, progress=False)
    trainer.fit(small[:256])
    assert torch.equal(_layer(frozen, 1, torch.nn.Linear).weight, before)
    assert not torch.equal(
        _layer(frozen, 3, torch.nn.Linear).weight, _weights(digitrec.DigitClassifier(seed=0))[2]
    )
    assert _engine.fusable_linears(_Doubled(seed=0)) is None
    assert _engine.fusable_linears(digitrec.DigitClassifier(seed=0)) is not None


def test_prediction_defaults_to_the_models_device(monkeypatch: pytest.MonkeyPatch) -> None:
    model = digitrec.DigitClassifier(seed=0)
    moved: list[object] = []
    original_to = torch.nn.Module.to

    def spy(self: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        moved.append(args)
        return original_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", spy)
    # A model on the "meta" device stands for one on a GPU: the default must not move it.
    meta = digitrec.DigitClassifier(seed=0).to("meta")
    moved.clear()
    with pytest.raises((NotImplementedError, RuntimeError)):
        digitrec.predict(meta, torch.zeros(2, 28, 28))  # meta tensors cannot be copied out
    assert moved == []
    assert digitrec.predict(model, torch.zeros(2, 28, 28)).shape == (2,)
    assert moved == []


def test_threads_with_eval_models_do_not_wait_for_each_other() -> None:
    first, second = digitrec.DigitClassifier(seed=0).eval(), digitrec.DigitClassifier(seed=1)
    second.eval()
    inside, release = threading.Event(), threading.Event()

    blocker: list[threading.Thread] = []

    def block(*_: object) -> None:
        if threading.current_thread() in blocker:
            inside.set()
            assert release.wait(10)

    handle = _layer(first, 1, torch.nn.Linear).register_forward_hook(block)
    blocked = threading.Thread(target=digitrec.predict, args=(first, torch.zeros(1, 28, 28)))
    blocker.append(blocked)
    blocked.start()
    assert inside.wait(10)
    done: list[int] = []
    for model in (second, first):  # another model, and the same model in eval mode
        worker = threading.Thread(
            target=lambda m=model: done.append(digitrec.get_predicted_label(m, torch.zeros(28, 28)))
        )
        worker.start()
        worker.join(5)
        assert not worker.is_alive(), "a prediction waited for another thread's"
    release.set()
    blocked.join(10)
    handle.remove()
    assert len(done) == 2


def test_saved_files_get_the_umask_mode(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        path = digitrec.save(digitrec.DigitClassifier(seed=0), tmp_path / "m.safetensors")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def _model_file_with_header(path: Path, header: str) -> Path:
    tensors = digitrec.DigitClassifier(seed=0).state_dict()
    from safetensors.torch import save

    path.write_bytes(save(dict(tensors), metadata={"digitrec": header}))
    return path


def test_deeply_nested_header_is_a_checkpoint_error(tmp_path: Path) -> None:
    deep = _model_file_with_header(tmp_path / "deep.safetensors", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(digitrec.CheckpointError, match="unreadable digitrec header"):
        digitrec.load(deep)
    nested = '{"a": ' + "[" * 200 + "1" + "]" * 200 + "}"
    middle = _model_file_with_header(tmp_path / "middle.safetensors", nested)
    with pytest.raises(digitrec.CheckpointError, match="nested more than"):
        digitrec.read_metadata(middle)


@pytest.mark.parametrize("temperature", [0.0, -1.5, float("nan"), float("inf")])
def test_load_refuses_a_temperature_that_is_not_positive(
    tmp_path: Path, temperature: float
) -> None:
    path = digitrec.save(digitrec.DigitClassifier(seed=0), tmp_path / "t.safetensors")
    tensors, header = tensorfile.read_file(path, "model file")
    tensors["temperature"] = torch.tensor(temperature)
    path.write_bytes(tensorfile.tensors_to_bytes(tensors, header))
    with pytest.raises(digitrec.CheckpointError, match="temperature"):
        digitrec.load(path)


def test_gzip_size_check_streams_instead_of_allocating_the_claim(tmp_path: Path) -> None:
    # 100 KB of gzip that claims about 100 MB of pixels but holds only a few.
    header = bytes([0, 0, 8, 3]) + struct.pack(">3I", 1000, 316, 316)
    path = tmp_path / "liar.idx.gz"
    path.write_bytes(gzip.compress(header + os.urandom(100_000)))
    assert path.stat().st_size < 120_000
    tracemalloc.start()
    try:
        with pytest.raises(digitrec.DataFileError, match="truncated"):
            digitrec.ImageDataset.from_idx(path, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000, f"peak {peak:,} bytes for a 100 KB file"


def test_failed_resume_leaves_the_model_as_it_was(
    small: digitrec.ImageDataset, tmp_path: Path
) -> None:
    path = tmp_path / "run.safetensors"
    trainer = digitrec.Trainer(digitrec.DigitClassifier(seed=0), epochs=2, progress=False)
    trainer.fit(small[:640])
    trainer.save_checkpoint(path)
    tensors, header = tensorfile.read_file(path, "training checkpoint")
    # Weights intact, optimizer state broken: the weights load first, then the failure.
    header["state"]["dict"][0][1] = {"value": None}
    path.write_bytes(tensorfile.tensors_to_bytes(tensors, header))
    fresh = digitrec.DigitClassifier(seed=0)
    before = _weights(fresh)
    with pytest.raises(digitrec.CheckpointError, match="incomplete training checkpoint"):
        digitrec.Trainer(fresh, epochs=2, progress=False).fit(small[:640], resume_from=path)
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(fresh), strict=True))


def test_sixteen_bit_png_is_read_at_full_depth(tmp_path: Path) -> None:
    from PIL import Image

    ramp = (np.arange(28 * 28, dtype=np.uint16).reshape(28, 28) * 83).astype(np.uint16)
    path = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    pixels = digitrec.read_image(path)
    assert pixels.dtype == torch.float32
    assert torch.equal(
        torch.round(pixels[0] * 65535).to(torch.int64), torch.from_numpy(ramp.astype(np.int64))
    )
    assert int(torch.unique(pixels).numel()) == 28 * 28  # no two levels merged into one byte

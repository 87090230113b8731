"""digitrec.export: ONNX and TorchScript programs that compute what the model computes."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import digitrec

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "export_onnx.py"
ONNX_TOLERANCE = 1e-4
TORCHSCRIPT_TOLERANCE = 1e-5

# TorchScript is deprecated in PyTorch; exporting to it is still asked for, and works.
torchscript_deprecated = pytest.mark.filterwarnings(
    r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning"
)


@pytest.fixture(scope="module")
def ort() -> Any:
    return pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def onnx() -> Any:
    return pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def models(mnist_train: digitrec.ImageDataset) -> dict[str, digitrec.DigitClassifier]:
    """The MLP and a CNN, each trained for a few steps, with temperatures other than 1."""
    mlp = digitrec.DigitClassifier("mlp", seed=3)
    digitrec.Trainer(mlp, epochs=1, progress=False).fit(mnist_train[:2048])
    mlp.temperature.fill_(0.8)
    # Trained, so the BatchNorm running statistics are not the identity: the export must
    # use them (evaluation mode), not the batch's.
    cnn = digitrec.DigitClassifier("cnn", class_names=[f"digit {d}" for d in range(10)], seed=0)
    digitrec.Trainer(cnn, epochs=1, batch_size=64, progress=False).fit(mnist_train[:512])
    cnn.temperature.fill_(1.7)
    return {"mlp": mlp, "cnn": cnn}


@pytest.fixture(scope="module")
def onnx_files(
    models: dict[str, digitrec.DigitClassifier], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    pytest.importorskip("onnx")
    folder = tmp_path_factory.mktemp("onnx")
    return {arch: digitrec.export(model, folder / f"{arch}.onnx") for arch, model in models.items()}


def _torch_outputs(
    model: digitrec.DigitClassifier, pixels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``model(pixels)`` in evaluation mode and ``digitrec.predict_proba``."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(pixels)
    finally:
        model.train(was_training)
    return logits, digitrec.predict_proba(model, pixels)


def _assert_close(actual: Any, expected: torch.Tensor, tolerance: float) -> None:
    actual = torch.as_tensor(actual)
    assert actual.dtype == torch.float32
    assert actual.shape == expected.shape
    difference = float((actual - expected).abs().max())
    assert difference <= tolerance, f"max absolute difference {difference:.3g}"


def _batches(test: digitrec.ImageDataset) -> list[torch.Tensor]:
    # 64 real test digits, then other batch sizes than the one exported with (2).
    return [test[:64].images, test[1000:1007].images, test[5000:5001].images]


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_onnx_runtime_matches_pytorch(
    ort: Any,
    models: dict[str, digitrec.DigitClassifier],
    onnx_files: dict[str, Path],
    mnist_test: digitrec.ImageDataset,
    arch: str,
) -> None:
    model = models[arch]
    session = ort.InferenceSession(str(onnx_files[arch]), providers=["CPUExecutionProvider"])
    assert [node.name for node in session.get_inputs()] == ["pixels"]
    assert session.get_inputs()[0].type == "tensor(uint8)"
    assert [node.name for node in session.get_outputs()] == ["logits", "probabilities"]
    for pixels in _batches(mnist_test):
        logits, probabilities = session.run(None, {"pixels": pixels.numpy()})
        expected_logits, expected_probabilities = _torch_outputs(model, pixels)
        _assert_close(logits, expected_logits, ONNX_TOLERANCE)
        _assert_close(probabilities, expected_probabilities, ONNX_TOLERANCE)
    # The temperature is applied: the probabilities are not the plain softmax.
    plain = torch.softmax(torch.as_tensor(logits), dim=1)
    assert float((plain - torch.as_tensor(probabilities)).abs().max()) > 1e-3
    with pytest.raises(ort.capi.onnxruntime_pybind11_state.InvalidArgument):
        session.run(None, {"pixels": (pixels.numpy() / 255).astype("float32")})


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_onnx_metadata_records_the_config(
    onnx: Any,
    models: dict[str, digitrec.DigitClassifier],
    onnx_files: dict[str, Path],
    arch: str,
) -> None:
    model = models[arch]
    proto = onnx.load(str(onnx_files[arch]))
    onnx.checker.check_model(proto)
    properties = {entry.key: entry.value for entry in proto.metadata_props}
    config = json.loads(properties["digitrec.config"])
    assert config == model.config.to_dict()
    assert digitrec.ModelConfig.from_dict(config) == model.config
    expected_names = list(model.class_names or [str(label) for label in range(10)])
    assert json.loads(properties["digitrec.class_names"]) == expected_names
    assert json.loads(properties["digitrec.temperature"]) == pytest.approx(float(model.temperature))
    assert properties["digitrec.version"] == digitrec.__version__
    assert properties["digitrec.torch_version"] == torch.__version__
    (graph_input,) = proto.graph.input
    tensor_type = graph_input.type.tensor_type
    assert tensor_type.elem_type == onnx.TensorProto.UINT8
    batch, *sides = tensor_type.shape.dim
    assert batch.dim_param  # symbolic: any batch size
    assert [side.dim_value for side in sides] == list(model.input_shape)


@torchscript_deprecated
@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_torchscript_matches_pytorch(
    models: dict[str, digitrec.DigitClassifier],
    mnist_test: digitrec.ImageDataset,
    tmp_path: Path,
    arch: str,
) -> None:
    model = models[arch].train()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    path = digitrec.export(model, tmp_path / f"{arch}.pt", format="torchscript")
    # The caller's model is left as it was: same mode, weights, gradients' flags.
    assert model.training
    assert all(parameter.requires_grad for parameter in model.parameters())
    assert all(torch.equal(model.state_dict()[name], tensor) for name, tensor in before.items())

    extra_files = {"digitrec.json": ""}
    module = torch.jit.load(str(path), _extra_files=extra_files)  # type: ignore[no-untyped-call]
    record = json.loads(extra_files["digitrec.json"])
    assert record["config"] == model.config.to_dict()
    assert record["temperature"] == pytest.approx(float(model.temperature))
    assert record["version"] == digitrec.__version__
    for pixels in _batches(mnist_test):
        with torch.no_grad():
            logits, probabilities = module(pixels)
        expected_logits, expected_probabilities = _torch_outputs(model, pixels)
        _assert_close(logits, expected_logits, TORCHSCRIPT_TOLERANCE)
        _assert_close(probabilities, expected_probabilities, TORCHSCRIPT_TOLERANCE)
    # A trace alone would scale float pixels as if 0-255 and, for the CNN, take any size.
    with pytest.raises(torch.jit.Error, match="uint8"):
        module(pixels.float() / 255)
    with pytest.raises(torch.jit.Error, match=r"shape \(N, 1, 28, 28\)"):
        module(torch.zeros(2, 1, 32, 32, dtype=torch.uint8))


@torchscript_deprecated
def test_three_channel_cnn_exports_and_matches(ort: Any, onnx: Any, tmp_path: Path) -> None:
    model = digitrec.DigitClassifier(
        "cnn",
        input_shape=(3, 32, 32),
        num_classes=4,
        mean=(0.5, 0.45, 0.4),
        std=(0.25, 0.2, 0.3),
        class_names=["ant", "bee", "cat", "dog"],
        seed=1,
    )
    model.temperature.fill_(0.6)
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (9, 3, 32, 32), dtype=torch.uint8, generator=generator)
    expected_logits, expected_probabilities = _torch_outputs(model, pixels)

    onnx_path = digitrec.export(model, tmp_path / "rgb.onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    logits, probabilities = session.run(None, {"pixels": pixels.numpy()})
    _assert_close(logits, expected_logits, ONNX_TOLERANCE)
    _assert_close(probabilities, expected_probabilities, ONNX_TOLERANCE)
    properties = {entry.key: entry.value for entry in onnx.load(str(onnx_path)).metadata_props}
    assert json.loads(properties["digitrec.class_names"]) == ["ant", "bee", "cat", "dog"]
    assert json.loads(properties["digitrec.config"])["input_shape"] == [3, 32, 32]
    with pytest.raises(ort.capi.onnxruntime_pybind11_state.InvalidArgument):
        session.run(None, {"pixels": pixels[:, :1].numpy()})  # one channel, not three

    script_path = digitrec.export(model, tmp_path / "rgb.pt", format="torchscript")
    script = torch.jit.load(str(script_path))  # type: ignore[no-untyped-call]
    logits, probabilities = script(pixels)
    _assert_close(logits, expected_logits, TORCHSCRIPT_TOLERANCE)
    _assert_close(probabilities, expected_probabilities, TORCHSCRIPT_TOLERANCE)


def test_opset(onnx: Any, tmp_path: Path) -> None:
    model = digitrec.DigitClassifier(seed=0)
    path = digitrec.export(model, tmp_path / "18.onnx", opset=18)
    opsets = {entry.domain: entry.version for entry in onnx.load(str(path)).opset_import}
    assert opsets[""] == 18
    # Below 18 the exporter converts down, and where it cannot it would keep opset 18.
    with pytest.raises(digitrec.InvalidInputError, match="opset 13"):
        digitrec.export(model, tmp_path / "13.onnx", opset=13)
    with pytest.raises(digitrec.InvalidTypeError, match="opset"):
        digitrec.export(model, tmp_path / "str.onnx", opset="18")  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["18.onnx"]


def test_errors(tmp_path: Path) -> None:
    model = digitrec.DigitClassifier(seed=0)
    with pytest.raises(digitrec.InvalidInputError, match=r"'onnx', 'torchscript'.*'tflite'"):
        digitrec.export(model, tmp_path / "m.tflite", format="tflite")  # type: ignore[arg-type]
    for not_a_model in (nn.Linear(784, 10), "model.safetensors", None):
        with pytest.raises(digitrec.InvalidTypeError, match="DigitClassifier"):
            digitrec.export(not_a_model, tmp_path / "m.onnx")  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("missing", ["onnx", "onnxscript"])
def test_missing_onnx_packages_name_the_extra(
    missing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import missing` fail
    with pytest.raises(digitrec.MissingDependencyError, match=r'pip install "digitrec\[onnx\]"'):
        digitrec.export(digitrec.DigitClassifier(seed=0), tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


@torchscript_deprecated
@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_a_failed_export_leaves_the_target_as_it_was(
    format: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if format == "onnx":
        pytest.importorskip("onnx")
    model = digitrec.DigitClassifier("cnn", seed=0)
    target = tmp_path / "model.bin"

    real_replace = os.replace

    def fail(source: str, destination: str) -> None:
        if Path(destination) != target:  # only the rename onto the target fails
            real_replace(source, destination)
            return
        assert Path(source).parent == tmp_path
        assert Path(source).stat().st_size > 1000  # the temporary file holds the export
        raise OSError("disk full")

    # Fails after the whole file has been written beside the target, before the rename.
    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", fail)
        with pytest.raises(OSError, match="disk full"):
            digitrec.export(model, target, format=format)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())  # no target, no temporary file

    target.write_bytes(b"previous export")
    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", fail)
        with pytest.raises(OSError, match="disk full"):
            digitrec.export(model, target, format=format)  # type: ignore[arg-type]
    assert target.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]

    # Fails inside the exporter itself.
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("exporter crashed")

    exporter = (torch.onnx, "export") if format == "onnx" else (torch.jit, "save")
    monkeypatch.setattr(*exporter, broken)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        digitrec.export(model, target, format=format)  # type: ignore[arg-type]
    assert target.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


# -- examples/export_onnx.py ---------------------------------------------------------

EXAMPLE_LINE = re.compile(r"^image (\d+): onnx (\d+), pytorch (\d+), actual (\d+)$", re.M)
DIFFERENCE = re.compile(
    r"^Max absolute difference of probabilities \(([\w ]+) vs PyTorch\): (\S+)$", re.M
)


@pytest.fixture(scope="module")
def example_main() -> Callable[[list[str]], int]:
    spec = importlib.util.spec_from_file_location("_example_export_onnx", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    main: Callable[[list[str]], int] = module.main
    return main


@torchscript_deprecated
def test_example_trains_exports_and_compares(
    ort: Any,
    example_main: Callable[[list[str]], int],
    mnist_test: digitrec.ImageDataset,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    onnx_path, script_path = tmp_path / "out" / "mlp.onnx", tmp_path / "mlp.pt"
    argv = ["--train", "--output", str(onnx_path), "--torchscript", str(script_path)]
    assert example_main(argv) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = EXAMPLE_LINE.findall(out)
    assert [int(index) for index, *_ in lines] == list(range(10))
    assert [int(actual) for *_, actual in lines] == mnist_test.labels[:10].tolist()
    assert all(onnx_label == torch_label for _, onnx_label, torch_label, _ in lines)
    assert sum(onnx_label == actual for _, onnx_label, _, actual in lines) >= 7
    differences = dict(DIFFERENCE.findall(out))
    assert set(differences) == {"ONNX Runtime", "TorchScript"}
    assert all(float(value) <= ONNX_TOLERANCE for value in differences.values())
    assert onnx_path.is_file()
    assert script_path.is_file()


def test_example_needs_a_model_or_train_and_onnxruntime(
    example_main: Callable[[list[str]], int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        example_main([])
    assert exit_info.value.code == 2
    assert "--train" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert example_main(["--train"]) == 1
    assert 'pip install "digitrec[onnx]"' in capsys.readouterr().err

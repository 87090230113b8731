"""The ``digitrec`` command line: each subcommand run in-process, and the two entry points."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from PIL import Image

import digitrec
from digitrec.cli import main
from tests.conftest import SYNTHETIC_MEDICAL_SPLITS, write_idx

PNEUMONIA = Path(__file__).resolve().parents[2] / "shared/data/medmnist/pneumoniamnist.npz"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PREDICTION = re.compile(r"^(?P<path>.+): (?P<label>\S+) \(probability (?P<p>[01]\.\d{3})\)$")
SUMMARY = re.compile(
    r"^Number of images tested: (\d+)\nNumber correct: (\d+)\nModel accuracy: ([\d.]+)%$",
    re.MULTILINE,
)


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    """Run ``digitrec argv`` in-process; return the exit status, stdout and stderr."""
    capsys.readouterr()
    status = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The MLP trained on the first 20,000 MNIST images for 2 epochs (~95% test accuracy).

    Training takes about 0.2 s; with the seeds fixed the weights are the same every run.
    """
    path = tmp_path_factory.mktemp("cli") / "mlp.safetensors"
    arguments = ["train", "--limit", "20000", "--epochs", "2", "--no-progress", "--output"]
    assert main([*arguments, str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def model(model_path: Path) -> digitrec.DigitClassifier:
    return digitrec.load(model_path)


@pytest.fixture
def seven_png(tmp_path: Path, mnist_test: digitrec.ImageDataset) -> Path:
    """MNIST test image 0, a 7, as a grayscale PNG."""
    image, label = mnist_test[0]
    assert label == 7
    path = tmp_path / "seven.png"
    Image.fromarray(image[0].numpy()).save(path)
    return path


# -- train --------------------------------------------------------------------


def test_train_prints_history_and_summary_and_saves_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mnist_train: digitrec.ImageDataset
) -> None:
    output = tmp_path / "models" / "small.safetensors"
    plots = tmp_path / "plots"
    status, out, err = run(
        capsys, "train", "--limit", "3000", "--epochs", "1", "--output", output, "--plots", plots
    )
    assert status == 0, err
    assert "epoch  train_loss  seconds\n    1  " in out
    assert "3,000 training images (the first 3,000), 10,000 test images" in out
    assert f"Saved the model to {output}" in out
    summary = SUMMARY.search(out)
    assert summary is not None
    assert summary.group(1) == "10000"
    assert out.rstrip().endswith(summary.group(0))  # the summary comes last
    assert "epoch 1/1  train_loss" in err  # progress on stderr, one line per epoch off a tty
    for name in ("loss", "predictions", "confusion_matrix", "reliability"):
        assert (plots / f"{name}.png").read_bytes().startswith(PNG_SIGNATURE), name

    header = digitrec.read_metadata(output)
    metadata = header["metadata"]
    expected_config = digitrec.Trainer(digitrec.DigitClassifier(), epochs=1, progress=False).config
    assert metadata["train_config"] == expected_config.to_dict()
    first = mnist_train[:3000]
    assert metadata["train_sha256"] == digitrec.dataset_sha256(first.images, first.labels)
    assert metadata["data"]["train_images"] == 3000
    assert metadata["data"]["train_limit"] == 3000
    assert "bundled MNIST" in metadata["data"]["source"]
    correct = int(summary.group(2))
    assert metadata["test_metrics"]["accuracy"] == pytest.approx(correct / 10000)
    assert header["config"]["class_names"] == list("0123456789")


def test_train_on_idx_pairs(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mnist_train: digitrec.ImageDataset,
    mnist_test: digitrec.ImageDataset,
) -> None:
    def pair(name: str, data: digitrec.ImageDataset) -> tuple[Path, Path]:
        images = write_idx(tmp_path / f"{name}-images", data.images[:, 0].numpy(), compress=True)
        labels = write_idx(tmp_path / f"{name}-labels", data.labels.numpy().astype(np.uint8))
        return images, labels

    train, test = pair("train", mnist_train[:2000]), pair("test", mnist_test[:500])
    output = tmp_path / "idx.safetensors"
    common = ("train", "--epochs", "1", "--no-progress", "--output", output, "--idx", *train)
    status, out, err = run(capsys, *common, "--test-idx", *test)
    assert status == 0, err
    assert "Number of images tested: 500" in out
    # Without a test pair: a seeded 10% split of the training pair.
    status, out, err = run(capsys, *common, "--class-names", "a,b,c,d,e,f,g,h,i,j")
    assert status == 0, err
    assert "1,800 training images, 200 test images" in out
    assert "Number of images tested: 200" in out
    assert digitrec.load(output).class_names == tuple("abcdefghij")


@pytest.mark.parametrize(
    ("source", "epochs", "min_auroc"),
    [
        ("synthetic", 10, 0.95),  # made here: runs in any clone
        ("pneumoniamnist", 1, 0.8),  # the real data, in ../shared when present
    ],
)
def test_train_on_medmnist_npz(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
    source: str,
    epochs: int,
    min_auroc: float,
) -> None:
    if source == "synthetic":
        npz: Path = request.getfixturevalue("synthetic_medical_npz")
        sizes = {split: size for split, (size, _) in SYNTHETIC_MEDICAL_SPLITS.items()}
    else:
        if not PNEUMONIA.is_file():
            pytest.skip(f"{PNEUMONIA} is absent")
        npz, sizes = PNEUMONIA, {"train": 4708, "val": 524, "test": 624}
    with np.load(npz) as arrays:
        test_images = torch.from_numpy(arrays["test_images"])[:, None]
        test_labels = torch.from_numpy(arrays["test_labels"][:, 0].astype(np.int64))
        val_labels = arrays["val_labels"][:, 0]
    output = tmp_path / "pneumonia.safetensors"
    status, out, err = run(
        capsys,
        "train",
        "--npz",
        npz,
        "--class-names",
        "normal,pneumonia",
        "--epochs",
        str(epochs),
        "--no-progress",
        "--output",
        output,
    )
    assert status == 0, err
    assert (
        f"{sizes['train']:,} training images, {sizes['val']:,} for calibration, "
        f"{sizes['test']:,} test images"
    ) in out
    model = digitrec.load(output)
    assert model.class_names == ("normal", "pneumonia")
    assert float(model.temperature) != 1.0
    assert f"Calibrated on the val split: softmax temperature {float(model.temperature):.3f}" in out
    # The printed summary is the saved model's accuracy on the test split.
    summary = SUMMARY.search(out)
    assert summary is not None, out
    correct = int((digitrec.predict(model, test_images) == test_labels).sum())
    assert (int(summary[1]), int(summary[2])) == (sizes["test"], correct)

    status, out, _ = run(capsys, "info", output)
    assert status == 0
    assert "class names: normal, pneumonia" in out
    status, out, _ = run(capsys, "evaluate", output, "--npz", npz, "--split", "val", "--json")
    assert status == 0
    report = json.loads(out)
    assert report["support"] == np.bincount(val_labels, minlength=2).tolist()
    assert report["class_names"] == ["normal", "pneumonia"]
    assert report["auroc"] > min_auroc
    status, out, _ = run(capsys, "evaluate", output, "--npz", npz, "--json")
    assert status == 0
    report = json.loads(out)
    assert report["accuracy"] == pytest.approx(correct / sizes["test"])


# -- info ---------------------------------------------------------------------


def test_info_shows_config_and_metadata(
    model_path: Path, capsys: pytest.CaptureFixture[str], mnist_train: digitrec.ImageDataset
) -> None:
    status, out, _ = run(capsys, "info", model_path)
    assert status == 0
    first = mnist_train[:20000]
    sha = digitrec.dataset_sha256(first.images, first.labels)
    for expected in (
        f"format: {digitrec.MODEL_FORMAT}",
        "class names: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9",
        "temperature: 1.0",
        f"versions: digitrec {digitrec.__version__}, torch {torch.__version__}",
        "config:\n  arch: mlp\n  input_shape: [1, 28, 28]\n  num_classes: 10",
        "metadata:\n  train_config:\n    epochs: 2\n    batch_size: 64\n    optimizer: sgd",
        f"  train_sha256: {sha}",
        "    train_images: 20000",
        "  test_metrics:\n",
        "saved at: ",
    ):
        assert expected in out, expected


def test_info_json_is_the_raw_header(model_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "info", model_path, "--json")
    assert status == 0
    assert json.loads(out) == digitrec.read_metadata(model_path)


# -- evaluate -----------------------------------------------------------------


def test_evaluate_prints_the_notebook_summary(
    model_path: Path,
    model: digitrec.DigitClassifier,
    capsys: pytest.CaptureFixture[str],
    mnist_test: digitrec.ImageDataset,
) -> None:
    status, out, _ = run(capsys, "evaluate", model_path)
    assert status == 0
    assert out.startswith("Number of images tested: 10000\n")
    assert out.strip() == str(digitrec.evaluate_accuracy(model, mnist_test))


def test_evaluate_report_and_json(
    model_path: Path, model: digitrec.DigitClassifier, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "evaluate", model_path, "--report")
    assert status == 0
    assert "sensitivity" in out
    assert "confusion matrix (rows actual, columns predicted):" in out
    status, out, _ = run(capsys, "evaluate", model_path, "--json")
    assert status == 0
    report = json.loads(out)
    assert set(report) >= {"accuracy", "confusion_matrix", "sensitivity", "auroc"}
    header = digitrec.read_metadata(model_path)
    assert report["accuracy"] == pytest.approx(header["metadata"]["test_metrics"]["accuracy"])


def test_evaluate_on_an_idx_pair(
    tmp_path: Path,
    model_path: Path,
    capsys: pytest.CaptureFixture[str],
    mnist_test: digitrec.ImageDataset,
) -> None:
    images = write_idx(tmp_path / "images", mnist_test.images[:100, 0].numpy())
    labels = write_idx(tmp_path / "labels", mnist_test.labels[:100].numpy().astype(np.uint8))
    status, out, _ = run(capsys, "evaluate", model_path, "--idx", images, labels)
    assert status == 0
    assert out.startswith("Number of images tested: 100\n")
    model = digitrec.load(model_path)
    first = mnist_test[:100]
    correct = int((digitrec.predict(model, first.images) == first.labels).sum())
    summary = SUMMARY.search(out)
    assert summary is not None, out
    assert int(summary[2]) == correct


# -- predict ------------------------------------------------------------------


def test_predict_a_png_of_a_seven(
    model_path: Path, seven_png: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "predict", model_path, seven_png)
    assert status == 0
    assert err == ""
    match = PREDICTION.match(out.strip())
    assert match is not None, out
    assert match["path"] == str(seven_png)
    assert match["label"] == "7"
    assert float(match["p"]) > 0.5
    image = torch.from_numpy(np.array(Image.open(seven_png)))[None, None]
    probability = float(digitrec.predict_proba(digitrec.load(model_path), image)[0, 7])
    assert match["p"] == f"{probability:.3f}"


def test_predict_prepares_other_sizes_and_colour(
    tmp_path: Path, model_path: Path, seven_png: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.png"
    Image.open(seven_png).resize((56, 56)).save(big)
    rgb = tmp_path / "rgb.jpg"
    Image.open(seven_png).convert("RGB").save(rgb, quality=95)
    status, out, err = run(capsys, "predict", model_path, big, rgb)
    assert status == 0
    assert err == ""  # prepared as the model's file says, silently
    matches = [PREDICTION.match(line) for line in out.splitlines()]
    assert [match["path"] for match in matches] == [str(big), str(rgb)]  # type: ignore[index]
    assert [match["label"] for match in matches] == ["7", "7"]  # type: ignore[index]


def test_predict_npy_agrees_with_the_api(
    tmp_path: Path,
    model_path: Path,
    model: digitrec.DigitClassifier,
    capsys: pytest.CaptureFixture[str],
    mnist_test: digitrec.ImageDataset,
) -> None:
    image, _ = mnist_test[1]
    plain = tmp_path / "one.npy"
    np.save(plain, image[0].numpy())  # (H, W) uint8
    floats = tmp_path / "two.npy"
    np.save(floats, image.permute(1, 2, 0).numpy() / 255.0)  # (H, W, C) floats in [0, 1]
    status, out, _ = run(capsys, "predict", model_path, plain, floats)
    assert status == 0
    expected = str(digitrec.get_predicted_label(model, image))
    probability = float(digitrec.predict_proba(model, image[None]).max())
    for line, path in zip(out.splitlines(), (plain, floats), strict=True):
        assert line == f"{path}: {expected} (probability {probability:.3f})"


def test_predict_folder_and_json(
    tmp_path: Path,
    model_path: Path,
    seven_png: Path,
    capsys: pytest.CaptureFixture[str],
    mnist_test: digitrec.ImageDataset,
) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    shutil.copy(seven_png, folder / "b.png")
    np.save(folder / "a.npy", mnist_test.images[2, 0].numpy())
    (folder / "notes.txt").write_text("not an image")
    status, out, _ = run(capsys, "predict", model_path, folder, "--json")
    assert status == 0
    results = json.loads(out)
    assert [result["path"] for result in results] == [
        str(folder / "a.npy"),
        str(folder / "b.png"),
    ]
    model = digitrec.load(model_path)
    images = torch.stack([mnist_test.images[2], mnist_test.images[0]])  # a.npy, b.png
    probs = digitrec.predict_proba(model, images)
    for result, row in zip(results, probs, strict=True):
        assert set(result) == {
            "path",
            "label",
            "class_index",
            "probability",
            "out_of_distribution",
        }
        assert result["out_of_distribution"] is None  # the model has no fitted statistics
        assert result["label"] == str(result["class_index"])
        assert result["class_index"] == int(row.argmax())
        assert result["probability"] == pytest.approx(float(row.max()), abs=1e-6)
    assert results[1]["label"] == "7"
    assert results[0]["class_index"] == int(mnist_test.labels[2])


# -- export -------------------------------------------------------------------


def test_export_onnx_runs_in_onnxruntime(
    tmp_path: Path,
    model_path: Path,
    model: digitrec.DigitClassifier,
    capsys: pytest.CaptureFixture[str],
    mnist_test: digitrec.ImageDataset,
) -> None:
    out_path = tmp_path / "mlp.onnx"
    status, out, err = run(capsys, "export", model_path, out_path, "--format", "onnx")
    assert status == 0, err
    assert str(out_path) in out
    session = onnxruntime.InferenceSession(str(out_path), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    images = mnist_test.images[:16]
    pixels = images.numpy() if "uint8" in feed.type else images.numpy().astype(np.float32) / 255
    (scores, *_) = session.run(None, {feed.name: pixels})
    assert np.asarray(scores).argmax(axis=1).tolist() == digitrec.predict(model, images).tolist()


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_export_torchscript(
    tmp_path: Path,
    model_path: Path,
    model: digitrec.DigitClassifier,
    capsys: pytest.CaptureFixture[str],
    mnist_test: digitrec.ImageDataset,
) -> None:
    out_path = tmp_path / "mlp.pt"
    status, _, err = run(capsys, "export", model_path, out_path, "--format", "torchscript")
    assert status == 0, err
    scripted = torch.jit.load(str(out_path))  # type: ignore[no-untyped-call]
    images = mnist_test.images[:16]
    logits, probabilities = scripted(images)
    torch.testing.assert_close(probabilities, digitrec.predict_proba(model, images))
    assert logits.argmax(dim=1).tolist() == digitrec.predict(model, images).tolist()


def test_export_without_the_export_module_is_a_clean_error(
    model_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "digitrec.exporting", None)  # makes the import fail
    status, out, err = run(capsys, "export", model_path, tmp_path / "m.onnx")
    assert status == 1
    assert out == ""
    assert err.startswith("digitrec: error: export is not available")


# -- errors -------------------------------------------------------------------


def test_missing_model_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "absent.safetensors"
    for command in ("info", "evaluate"):
        status, out, err = run(capsys, command, missing)
        assert status == 1
        assert out == ""
        assert err == f"digitrec: error: no model file at {str(missing)!r}\n"


def test_a_file_that_is_not_a_model(
    tmp_path: Path, seven_png: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = tmp_path / "fake.safetensors"
    shutil.copy(seven_png, fake)
    status, _, err = run(capsys, "predict", fake, seven_png)
    assert status == 1
    assert err.startswith("digitrec: error: ")
    assert "not a safetensors file" in err
    assert "Traceback" not in err


def test_unsupported_or_missing_images(
    tmp_path: Path, model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gif = tmp_path / "digit.gif"
    gif.write_bytes(b"GIF89a")
    status, out, err = run(capsys, "predict", model_path, gif)
    assert (status, out) == (1, "")
    assert err.startswith(f"digitrec: cannot read {gif}: ")
    assert "is not a PNG, JPEG, BMP, TIFF, WebP, .npy or DICOM image" in err
    status, _, err = run(capsys, "predict", model_path, tmp_path / "absent.png")
    assert status == 1
    assert "no file or folder at" in err
    broken = tmp_path / "broken.png"
    broken.write_text("not a png")
    status, _, err = run(capsys, "predict", model_path, broken)
    assert status == 1
    assert f"cannot read {broken}" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    status, _, err = run(capsys, "predict", model_path, empty)
    assert status == 1
    assert "no image files in" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "required: COMMAND"),
        (["train"], "required: --output"),
        (["train", "--output", "m", "--test-idx", "a", "b"], "--test-idx needs --idx"),
        (["train", "--output", "m", "--class-names", "a,b"], "--class-names needs --idx or --npz"),
        (["train", "--output", "m", "--limit", "0"], "must be a positive integer"),
        (["evaluate", "m", "--split", "val"], "--split needs --npz"),
        (["evaluate", "m", "--report", "--json"], "not allowed with argument"),
        (["predict"], "required: PATH"),
        (["export", "m", "o", "--format", "pickle"], "invalid choice: 'pickle'"),
    ],
)
def test_invalid_command_lines_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert out == ""
    assert "usage: digitrec" in err
    assert message in err


def test_invalid_training_settings_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "train", "--epochs", "0", "--output", tmp_path / "m")
    assert status == 1
    assert err == "digitrec: error: epochs must be a positive integer, got 0\n"
    assert not (tmp_path / "m").exists()


# -- help and entry points ----------------------------------------------------


@pytest.mark.parametrize(
    ("command", "arguments"),
    [
        ("train", ["--output", "--arch", "--idx", "--test-idx", "--npz", "--class-names",
                   "--recipe", "--epochs", "--batch-size", "--lr", "--optimizer", "--device",
                   "--seed", "--plots", "--no-progress", "examples:"]),
        ("evaluate", ["MODEL", "--idx", "--npz", "--split", "--report", "--json", "--device",
                      "examples:"]),
        ("predict", ["MODEL", "PATH", "--json", "--no-prepare", "--device", ".npy", "examples:"]),
        ("export", ["MODEL", "OUT", "--format", "onnx", "torchscript", "--opset", "examples:"]),
        ("info", ["MODEL", "--json", "examples:"]),
    ],
)  # fmt: skip
def test_help_of_each_command(
    command: str, arguments: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, command, "--help")
    assert status == 0
    assert out.startswith(f"usage: digitrec {command}")
    for argument in arguments:
        assert argument in out, argument
    assert "--limit" not in out  # hidden; documented in the reference


def test_top_level_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--help")
    assert status == 0
    for command in ("train", "evaluate", "predict", "export", "info"):
        assert command in out
    status, out, _ = run(capsys, "--version")
    assert (status, out) == (0, f"digitrec {digitrec.__version__}\n")


def test_python_dash_m_digitrec() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "digitrec", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage: digitrec ")


def test_console_script() -> None:
    beside = Path(sys.executable).with_name("digitrec")
    script = str(beside) if beside.is_file() else shutil.which("digitrec")
    if script is None:
        pytest.skip("the digitrec console script is not installed")
    completed = subprocess.run(
        [script, "info", "--help"], capture_output=True, text=True, check=False, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage: digitrec info")
    completed = subprocess.run(
        [script, "info", "absent.safetensors"], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 1
    assert completed.stderr == "digitrec: error: no model file at 'absent.safetensors'\n"

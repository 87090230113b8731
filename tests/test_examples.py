"""Run every script in examples/ end to end, with settings small enough for a test suite."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import torch

import digitrec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

SUMMARY = re.compile(
    r"^Number of images tested: (\d+)\nNumber correct: (\d+)\nModel accuracy: ([\d.]+)%$",
    re.MULTILINE,
)
TRAIN_PREDICTION = re.compile(r"^image (\d+): predicted (\d+), actual (\d+)$", re.MULTILINE)
DIGITS_PREDICTION = re.compile(
    r"^image (\d+): predicted (\d+), actual (\d+)  (right|WRONG)  "
    r"\(top probability ([\d.]+) for (\d+)\)$",
    re.MULTILINE,
)
DIGITS_SUMMARY = re.compile(r"^Correct: (\d+) of (\d+) \(([\d.]+)%\)$", re.MULTILINE)

Main = Callable[[list[str]], int]


def _load_main(name: str) -> Main:
    """Import examples/<name>.py as a module (examples/ is not a package) and return its main."""
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    main: Main = module.main
    return main


@pytest.fixture(scope="module")
def train_mnist() -> Main:
    return _load_main("train_mnist")


@pytest.fixture(scope="module")
def predict_digits() -> Main:
    return _load_main("predict_digits")


@pytest.fixture(scope="module")
def mnist_test_labels() -> list[int]:
    labels: list[int] = digitrec.load_mnist("test").labels.tolist()
    return labels


def _summary(out: str) -> tuple[int, int, float]:
    """Check the notebook's summary ends the output and return (total, correct, accuracy %)."""
    matches = list(SUMMARY.finditer(out))
    assert len(matches) == 1, out
    assert out.rstrip().endswith(matches[0].group(0)), "the summary must come last"
    total, correct, percent = (
        int(matches[0].group(1)),
        int(matches[0].group(2)),
        float(matches[0].group(3)),
    )
    assert 0 <= correct <= total
    assert percent == pytest.approx(100 * correct / total, abs=0.005)
    return total, correct, percent


def _assert_png(path: Path) -> None:
    assert path.is_file(), f"{path} was not written"
    data = path.read_bytes()
    assert len(data) > len(PNG_SIGNATURE)
    assert data.startswith(PNG_SIGNATURE)


def test_train_mnist_mlp_with_plots(
    train_mnist: Main,
    mnist_test_labels: list[int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plots = tmp_path / "figures" / "run"  # does not exist yet: the script creates it
    argv = ["--limit", "5000", "--epochs", "1", "--show", "7", "--plots", str(plots)]

    assert train_mnist(argv) == 0
    out, err = capsys.readouterr()

    assert "Number of images tested: 10000" in out
    assert "Number correct:" in out
    assert "Model accuracy:" in out
    total, _, percent = _summary(out)
    assert total == 10000
    assert percent > 80.0  # the MLP reaches about 88% after one epoch on 5000 images

    assert "Data: 5000 training images, 10000 test images" in out
    assert "Training: 1 epoch, batches of 64, sgd" in out  # the recipe, with --epochs applied
    assert re.search(r"^epoch  train_loss  seconds\n\s+1\s+\d+\.\d{4}\s+\d+\.\d{2}$", out, re.M)
    assert re.search(r"^Training time: [\d.]+ s in training steps, [\d.]+ s wall$", out, re.M)

    predictions = TRAIN_PREDICTION.findall(out)
    assert len(predictions) == 7
    assert [int(index) for index, _, _ in predictions] == list(range(7))
    assert [int(actual) for _, _, actual in predictions] == mnist_test_labels[:7]
    assert all(0 <= int(predicted) <= 9 for _, predicted, _ in predictions)

    _assert_png(plots / "loss.png")
    _assert_png(plots / "predictions.png")
    assert "epoch 1/1  train_loss" in err  # progress is on by default, on stderr


def test_train_mnist_cnn(
    train_mnist: Main, mnist_test_labels: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--arch", "cnn", "--limit", "1000", "--epochs", "1", "--show", "3", "--no-progress"]

    assert train_mnist(argv) == 0
    out, err = capsys.readouterr()

    assert "Model: cnn with" in out
    assert "Training: 1 epoch, batches of 128, sgd" in out  # the cnn recipe's batch size
    assert _summary(out)[0] == 10000
    predictions = TRAIN_PREDICTION.findall(out)
    assert len(predictions) == 3
    assert [int(actual) for _, _, actual in predictions] == mnist_test_labels[:3]
    assert err == ""  # --no-progress


def test_train_mnist_is_deterministic(
    train_mnist: Main, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--limit", "2000", "--epochs", "1", "--show", "0", "--no-progress"]

    summaries = []
    for _ in range(2):
        assert train_mnist(argv) == 0
        out = capsys.readouterr().out
        assert TRAIN_PREDICTION.search(out) is None  # --show 0 prints no per-image line
        match = SUMMARY.search(out)
        assert match is not None, out
        summaries.append(match.group(0))

    assert summaries[0] == summaries[1]


def test_train_mnist_plots_need_matplotlib_only_when_asked(
    train_mnist: Main,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # None in sys.modules makes every import of these names fail, as if not installed.
    for name in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "digitrec.plotting", raising=False)  # import it afresh

    small = ["--limit", "500", "--epochs", "1", "--show", "1", "--no-progress"]
    assert train_mnist(small) == 0
    assert "Model accuracy:" in capsys.readouterr().out

    assert train_mnist([*small, "--plots", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "error:" in err
    assert "matplotlib" in err
    assert "train_loss" not in out  # it gave up before training, not after
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_train_mnist_reports_an_unavailable_device(
    train_mnist: Main, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train_mnist(["--device", "cuda", "--limit", "100", "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert "error:" in err
    assert "CUDA" in err
    assert "Model accuracy:" not in out


def test_train_mnist_script_help() -> None:
    script = EXAMPLES / "train_mnist.py"
    completed = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage: train_mnist.py")
    for flag in ("--arch", "--epochs", "--device", "--seed", "--show", "--plots", "--limit"):
        assert flag in completed.stdout


def test_predict_digits(
    predict_digits: Main,
    mnist_test_labels: list[int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = tmp_path / "figures" / "digits.png"
    argv = ["--epochs", "1", "--limit", "5000", "--start", "3", "--count", "6"]

    assert predict_digits([*argv, "--output", str(output), "--no-progress"]) == 0
    out, err = capsys.readouterr()

    lines = DIGITS_PREDICTION.findall(out)
    assert len(lines) == 6
    assert [int(index) for index, *_ in lines] == list(range(3, 9))
    right = 0
    for index, predicted, actual, verdict, probability, top_label in lines:
        assert predicted in set("0123456789")
        assert actual in set("0123456789")
        assert int(actual) == mnist_test_labels[int(index)]
        assert verdict == ("right" if predicted == actual else "WRONG")
        assert top_label == predicted  # predict_proba agrees with get_predicted_label
        assert 0.1 <= float(probability) <= 1.0  # the top one of 10 probabilities
        right += predicted == actual

    summary = DIGITS_SUMMARY.findall(out)
    assert len(summary) == 1
    correct, count, percent = summary[0]
    assert (int(correct), int(count)) == (right, 6)
    assert float(percent) == pytest.approx(100 * right / 6, abs=0.005)
    assert right >= 4  # about 88% of test images are right after this training

    _assert_png(output)
    assert f"Saved the figure to {output}" in out
    assert err == ""


def test_predict_digits_defaults_save_nothing(
    predict_digits: Main,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert predict_digits(["--epochs", "1", "--limit", "1000", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert len(DIGITS_PREDICTION.findall(out)) == 8  # --count defaults to 8
    assert "Saved" not in out
    assert not list(tmp_path.iterdir())


def test_predict_digits_rejects_images_past_the_end(
    predict_digits: Main, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        predict_digits(["--start", "9998", "--count", "3"])
    assert exit_info.value.code == 2
    assert "goes past the last of the 10000 test images" in capsys.readouterr().err


def test_save_load_predict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main = _load_main("save_load_predict")
    output = tmp_path / "models" / "mlp.safetensors"
    assert main(["--output", str(output), "--count", "3"]) == 0
    out = capsys.readouterr().out
    assert "Loaded model predicts bit-identically: True" in out
    assert output.is_file()
    accuracy = float(out.split("% on the test set")[0].rsplit(" ", 1)[-1])
    assert accuracy >= 97.0
    assert digitrec.read_metadata(output)["metadata"]["test_accuracy"] == pytest.approx(
        accuracy / 100
    )
    assert len([line for line in out.splitlines() if line.startswith("image ")]) == 3

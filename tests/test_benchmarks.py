"""Smoke tests of the benchmark scripts: each runs with --quick and writes its JSON."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from PIL import Image

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # for `import _common`
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def run_quick(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *extra: str, output: str = ""
) -> dict[str, Any]:
    module = load(name, monkeypatch)
    assert module.main(["--quick", "--out", str(tmp_path), *extra]) == 0
    result: dict[str, Any] = json.loads(
        (tmp_path / f"{output or name.removeprefix('bench_')}.json").read_text()
    )
    assert {"machine", "settings"} <= result.keys()
    assert result["settings"]["quick"] is True
    return result


def test_notebook(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_quick("bench_notebook", monkeypatch, tmp_path)
    out = capsys.readouterr().out
    assert result["settings"]["train_images"] == 6000
    digitrec_side = result["digitrec"]
    assert len(digitrec_side["epoch_seconds"]) == 1
    assert 0.0 < digitrec_side["mean_test_accuracy"] <= 1.0
    assert digitrec_side["min_epoch_seconds"] > 0
    if importlib.util.find_spec("torchvision") is None:
        assert result["notebook"] is None
    if result["notebook"] is None:
        assert "notebook side skipped because torchvision is absent" in out
        assert result["notebook_skipped"]
        assert result["speedup_median"] is None
    else:
        assert result["notebook"]["median_epoch_seconds"] > 0
        assert result["speedup_min"] > 0
    assert "| digitrec Trainer" in out


def test_time_to_accuracy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    plot = tmp_path / "tta.png"
    result = run_quick("bench_time_to_accuracy", monkeypatch, tmp_path, "--plot", str(plot))
    assert set(result["recipes"]) == {"mlp", "mlp-fast", "cnn"}
    for entry in result["recipes"].values():
        (run,) = entry["runs"]
        assert run["epochs"] == 1
        assert len(run["val_accuracy"]) == len(run["epoch_seconds"]) == 1
        assert run["fit_wall_seconds"] >= run["train_seconds"] > 0
        assert {"first_epoch_at_target", "train_seconds_to_target", "final_accuracy"} <= run.keys()
    assert plot.stat().st_size > 0


def test_inference(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    result = run_quick("bench_inference", monkeypatch, tmp_path)
    rows = result["measurements"]
    assert {(row["arch"], row["threads"]) for row in rows} >= {("mlp", 1), ("cnn", 1)}
    for row in rows:
        assert 0 < row["latency_median_us"] <= row["latency_p90_us"]
        assert set(row["images_per_second"]) == {"1024", "4096"}


def test_machine_limit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    result = run_quick("bench_machine_limit", monkeypatch, tmp_path)
    assert result["peak_gflops"] > 0
    assert set(result["networks"]) == {"mlp", "cnn"}
    for network in result["networks"].values():
        assert network["flops_per_epoch"] == network["flops_per_step"] * network["steps_per_epoch"]
        assert network["measured_epoch_seconds"] > network["lower_bound_seconds_at_peak"] > 0


def test_formats(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("pydicom")
    result = run_quick("bench_formats", monkeypatch, tmp_path)
    accuracy = result["accuracy"]
    assert set(accuracy) == {"8-bit PNG", "16-bit PNG", "12-bit DICOM, MONOCHROME1"}
    assert accuracy["8-bit PNG"] > 0.95
    assert result["goal_met"] is True


def test_serving(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("aiohttp")
    pytest.importorskip("fastapi")
    module = load("bench_serving", monkeypatch)
    result = module.main(["--quick", "--out", str(tmp_path)])
    written = json.loads((tmp_path / "serving.json").read_text())
    # serving.txt is the report of the same run, one table row per setting and level.
    text = (tmp_path / "serving.txt").read_text()
    assert text == module.report(written) + "\n"
    assert written["runs"] == json.loads(json.dumps(result["runs"]))
    assert set(written["runs"]) == {
        "model process (the default)",
        "1 process, no model process",
        "2 processes",
        "1 process, batching off",
    }
    assert set(written["reference_ms"]) == set(written["runs"])
    assert all(value > 0 for value in written["reference_ms"].values())
    for levels in written["runs"].values():
        assert [run["clients"] for run in levels] == [1, 8, 32]
        for run in levels:
            # Every request of every level answered 200 with one prediction.
            assert run["errors"] == 0
            assert run["requests"] >= 100
            assert 0 < run["p50_ms"] <= run["p99_ms"]
            assert run["server_cpu_ms_per_request"] > 0


@pytest.mark.parametrize("arch", ["cnn", "resnet"])
def test_medical_on_the_synthetic_stand_in(
    arch: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    module = load("bench_medical", monkeypatch)
    missing = tmp_path / "no-such.npz"  # the synthetic stand-in runs instead
    argv = ["--quick", "--out", str(tmp_path), "--npz", str(missing), "--arch", arch]
    assert module.main(argv) == 0
    name = "medical" if arch == "cnn" else f"medical_{arch}"
    result = json.loads((tmp_path / f"{name}.json").read_text())
    assert result["settings"]["arch"] == arch
    assert result["settings"]["source"].startswith("synthetic")
    [seed] = result["seeds"]
    # The stand-in's classes differ by a bright square: two epochs learn it.
    assert seed["auroc"]["estimate"] > 0.9
    assert seed["auroc"]["low"] <= seed["auroc"]["estimate"] <= seed["auroc"]["high"]
    text = (tmp_path / f"{name}.txt").read_text()
    assert f"Recipe: {arch}, 2 epochs" in text


def test_ood(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    result = run_quick("bench_ood", monkeypatch, tmp_path)
    models = result["results"]
    assert {"mnist-cnn", "mnist-mlp"} <= models.keys()
    for name in ("mnist-cnn", "mnist-mlp"):
        # The threshold is set to accept 95% of held-out training images; on test, close.
        assert 0.85 <= models[name]["test_accepted_by_threshold"] <= 1.0
        sets = models[name]["sets"]
        for kind in ("noise", "blank & near-blank"):
            assert sets[kind]["fitted"]["auroc"] >= 0.99, (name, kind)
    # Even after one short epoch, the fitted statistics beat max-softmax on every set.
    for name, model in models.items():
        for kind, scores in model["sets"].items():
            assert scores["fitted"]["auroc"] > scores["max-softmax"]["auroc"], (name, kind)
    # The per-character count of accepted letters and symbols adds up to the set's share.
    module = load("bench_ood", monkeypatch)
    images = result["settings"]["images_per_set"]
    for name in ("mnist-cnn", "mnist-mlp"):
        rows = models[name]["accepted_characters"]
        share = models[name]["accepted_by_threshold"]["letters & symbols"]
        assert sum(row["accepted"] for row in rows) == round(share * images)
        assert all(0 < row["accepted"] <= row["images"] for row in rows)
        assert {row["character"] for row in rows} <= set(module.CHARACTERS)
        shares = [row["accepted"] / row["images"] for row in rows]
        assert shares == sorted(shares, reverse=True)
    if "pneumonia-cnn" in models:  # only with ../shared's PneumoniaMNIST
        assert models["pneumonia-cnn"]["accepted_characters"] is None
    # The cnn scored again with statistics fitted on the largest bank the run allows.
    large = models["mnist-cnn-large-bank"]
    assert large["statistics"] == "fitted here"
    assert large["detector"]["bank_size"] == large["detector"]["fit_images"] == 1800
    assert result["settings"]["large_bank"] == 20_000
    with Image.open(tmp_path / "ood_accepted.png") as picture:
        assert picture.size == (24 * 30 * 3, 2 * 30 * 3)  # a row of 24 per MNIST model


def test_screen_ood(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    result = run_quick("screen_ood", monkeypatch, tmp_path, output="ood_screen")
    assert result["settings"]["seeds"] == [101, 102, 103, 104]  # never bench_ood's 1-4
    for name in ("mnist-cnn", "mnist-mlp"):
        rows = result["results"][name]
        assert {"discriminator alone", "the four terms + tta_kl"} <= rows.keys()
        for bank in (100, 400):
            shipped = rows[f"the four terms, bank {bank}"]
            assert shipped["noise"]["auroc"] >= 0.99, (name, bank)
        # The shipped sum separates letters better than the logits' energy alone.
        letters = "letters & symbols"
        assert rows["the four terms, bank 400"][letters]["auroc"] > rows["energy"][letters]["auroc"]
    text = (tmp_path / "ood_screen.txt").read_text()
    assert "mnist-mlp (development sets, 100 images each" in text


def test_prepare_digits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    result = run_quick("bench_prepare_digits", monkeypatch, tmp_path)
    assert result["images_per_second"] > 0
    photos = result["accuracy"]["photos"]
    # Stretched photos are close to guessing; MNIST's framing makes them readable, even
    # for the quick run's weak model.
    assert photos["prepare_digits"] > photos["plain"] + 0.3
    clean = result["accuracy"]["clean"]
    assert abs(clean["prepare_digits"] - clean["plain"]) < 0.02

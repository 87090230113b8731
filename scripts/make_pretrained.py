"""Make the pretrained models bundled in ``src/digitrec/_weights``, reproducibly.

Every step is seeded and runs on the CPU, and ``SOURCE_DATE_EPOCH`` pins the save
time, so re-running this script with the same digitrec, torch and Python versions
writes the same bytes; the sha256 it prints must equal ``digitrec.models.PRETRAINED``.

Each model is trained on 55,000 of MNIST's 60,000 training images; the other 5,000
(a seeded split) calibrate its probabilities. Its out-of-distribution statistics
are fitted on the training images (``fit_ood`` holds a tenth of them out to set
the threshold).
Test metrics are measured on the 10,000 test images and recorded in the file.

Same bytes on other machines: floating-point sums depend on the instruction set
and on the library's code path for the CPU at hand (MKL takes other paths on AMD
than on Intel). The script therefore runs itself again with those pinned
(``NUMERICS``: MKL's conditional numerical reproducibility, ATen's and oneDNN's
instruction set at AVX2, which every x86-64 CPU of the last decade has) and two
torch threads, and records the pins in each file.

Run (a few minutes for the CNN on 2 cores):
    python scripts/make_pretrained.py            # both
    python scripts/make_pretrained.py mnist-mlp  # one
    python scripts/make_pretrained.py mnist-mlp --output /tmp/check
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

import digitrec

OUTPUT = Path(__file__).resolve().parent.parent / "src" / "digitrec" / "_weights"
# 2026-12-01T00:00:00Z: the save time written into every bundled file.
SOURCE_DATE_EPOCH = "1764547200"
BANK_SIZE = 600
THREADS = 2
#: Set before torch loads (the script runs itself again with them): the same code
#: paths, and so the same sums, on any x86-64 CPU with AVX2.
NUMERICS = {
    "MKL_CBWR": "COMPATIBLE",
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH,
}
RECIPES = {
    # Two threads pinned: convolutions sum in a thread-dependent order.
    "mnist-cnn": ("cnn", replace(digitrec.RECIPES["cnn"], num_threads=2)),
    # The "mlp" recipe run twice as long: 97.8% and more on every seed we tried.
    "mnist-mlp": ("mlp", replace(digitrec.RECIPES["mlp"], epochs=20)),
}


def make(name: str, output: Path = OUTPUT) -> Path:
    """Train, calibrate, fit OOD statistics, evaluate and save one bundled model.

    Call it in a process started with :data:`NUMERICS` in its environment (as
    :func:`main` does), or the bytes depend on the CPU.
    """
    unpinned = {key for key, value in NUMERICS.items() if os.environ.get(key) != value}
    capability = torch.backends.cpu.get_cpu_capability()
    if unpinned or capability != "AVX2":
        raise RuntimeError(
            f"run through main(): {sorted(unpinned)} not pinned, or the CPU lacks AVX2 "
            f"(ATen runs {capability})"
        )
    # Sums in matrix products depend on the thread count: pin it for every step,
    # whatever the caller set (the recipes pin their own for training).
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        return _make(name, output)
    finally:
        torch.set_num_threads(previous)


def _make(name: str, output: Path) -> Path:
    arch, recipe = RECIPES[name]
    train, held_out = digitrec.load_mnist("train").split(5000, seed=0)
    test = digitrec.load_mnist("test")
    model = digitrec.DigitClassifier(arch, seed=0)
    started = time.perf_counter()
    history = digitrec.Trainer(model, recipe=recipe, progress=False).fit(train)
    seconds = time.perf_counter() - started
    temperature = digitrec.calibrate(model, held_out)
    # 600 training images in the kNN banks keep both bundled models under 2 MB together.
    detector = digitrec.fit_ood(model, train, seed=0, bank_size=BANK_SIZE)
    detector.attach(model)
    report = digitrec.evaluate(model, test)
    metadata = {
        "name": name,
        "made_by": "scripts/make_pretrained.py",
        "train_config": recipe.to_dict(),
        "train_sha256": digitrec.dataset_sha256(train.images, train.labels),
        "held_out_sha256": digitrec.dataset_sha256(held_out.images, held_out.labels),
        "numerics": {**NUMERICS, "torch_threads": THREADS},
        "data": "bundled MNIST: 55,000 training images (split(5000, seed=0)), 5,000 held "
        "out for calibration and out-of-distribution statistics, 10,000 test images",
        # Timings are left out: they differ from run to run, and the bytes must not.
        "train_loss": history.train_loss,
        "temperature": temperature,
        "test_metrics": report.to_dict(),
    }
    path = digitrec.save(model, output / f"{name}.safetensors", metadata=metadata)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(
        f"{name}: test accuracy {100 * report.accuracy:.2f}%, ECE {report.ece:.4f}, "
        f"{path.stat().st_size / 1e3:.0f} kB, {seconds:.0f} s of training\n"
        f'    "{name}": ("{path.name}", "{digest}"),'
    )
    return path


def main() -> None:
    """Make the models named on the command line (all by default)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # No ``choices``: argparse checks an empty list against them and refuses it.
    parser.add_argument("names", nargs="*", help=f"any of {sorted(RECIPES)}; default: all")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="folder for the files")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(RECIPES))
    if unknown:
        parser.error(f"unknown model names {unknown}; choose from {sorted(RECIPES)}")
    if any(os.environ.get(key) != value for key, value in NUMERICS.items()):
        # torch is loaded already: run again with the pins in place from the start.
        script = str(Path(__file__).resolve())
        os.execve(sys.executable, [sys.executable, script, *sys.argv[1:]], os.environ | NUMERICS)
    for name in args.names or sorted(RECIPES):
        make(name, args.output)


if __name__ == "__main__":
    main()

"""A rough machine limit: the seconds per MNIST epoch that arithmetic alone would take.

FLOPs of one training step (forward, loss, backward of ``model.network`` on normalized
float input at the recipe's batch size) are counted with torch's FlopCounterMode,
which counts matrix products and convolutions only, so the bound is optimistic. They
are divided by the float32 matrix-product rate ``torch.mm`` reaches on this machine,
and set beside digitrec's measured seconds per epoch.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from _common import RESULTS_DIR, machine, machine_line, markdown_table, threads, write_json
from torch.utils.flop_counter import FlopCounterMode

import digitrec

ARCHS: tuple[digitrec.Architecture, ...] = ("mlp", "cnn")
MNIST_TRAIN_IMAGES = 60_000
QUICK_TRAIN_IMAGES = 6000
SHAPES = {"64x784 @ 784x64": (64, 784, 64), "1024x1024 @ 1024x1024": (1024, 1024, 1024)}
TRIALS = 5


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: measure epochs on {QUICK_TRAIN_IMAGES} images, shorter matmul trials",
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS_DIR, help="folder for machine_limit.json"
    )
    return parser.parse_args(argv)


def step_flops(arch: digitrec.Architecture, batch_size: int) -> int:
    """FLOPs of one forward + cross-entropy + backward pass of the network."""
    network = digitrec.DigitClassifier(arch, seed=0).network.train()
    inputs = torch.randn(batch_size, 1, 28, 28)
    if arch == "cnn":
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (batch_size,))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(network(inputs), labels).backward()  # type: ignore[no-untyped-call]
    return int(counter.get_total_flops())


def matmul_gflops(m: int, k: int, n: int, seconds: float) -> float:
    """Best rate of ``torch.mm`` over TRIALS trials of about ``seconds`` each."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    out = torch.empty(m, n)
    torch.mm(a, b, out=out)
    started, reps = time.perf_counter(), 0
    while time.perf_counter() - started < seconds / 4:  # warm-up, and sizes a trial
        torch.mm(a, b, out=out)
        reps += 1
    reps = max(1, reps * 4)
    best = math.inf
    for _ in range(TRIALS):
        started = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - started)
    return 2 * m * k * n * reps / best / 1e9


def measured_epoch_seconds(
    arch: digitrec.Architecture, train: digitrec.ImageDataset
) -> tuple[float, list[float]]:
    """Min over 2 recipe epochs, scaled to the 60,000 images of MNIST."""
    model = digitrec.DigitClassifier(arch, seed=0)
    history = digitrec.Trainer(model, epochs=2, progress=False).fit(train)
    return min(history.epoch_seconds) * MNIST_TRAIN_IMAGES / len(train), history.epoch_seconds


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(machine_line())
    default_threads = torch.get_num_threads()
    thread_counts = sorted({default_threads, 1})
    trial_seconds = 0.05 if args.quick else 0.5

    rates: dict[str, dict[str, float]] = {}
    rate_rows: list[list[object]] = []
    for label, (m, k, n) in SHAPES.items():
        rates[label] = {}
        for count in thread_counts:
            with threads(count):
                rates[label][str(count)] = matmul_gflops(m, k, n, trial_seconds)
        rate_rows.append([label, *(f"{rates[label][str(c)]:.1f}" for c in thread_counts)])
    peak = max(rate for by_threads in rates.values() for rate in by_threads.values())

    train = digitrec.load_mnist("train")
    if args.quick:
        train = train[:QUICK_TRAIN_IMAGES]
    networks: dict[str, dict[str, Any]] = {}
    rows: list[list[object]] = []
    small, large = SHAPES
    for arch in ARCHS:
        recipe = digitrec.RECIPES[arch]
        recipe_threads = recipe.num_threads or default_threads
        flops = step_flops(arch, recipe.batch_size)
        steps = math.ceil(MNIST_TRAIN_IMAGES / recipe.batch_size)
        per_epoch = flops * steps
        measured, raw = measured_epoch_seconds(arch, train)
        bounds = {
            label: {t: per_epoch / (rate * 1e9) for t, rate in by_threads.items()}
            for label, by_threads in rates.items()
        }
        networks[arch] = {
            "batch_size": recipe.batch_size,
            "recipe_threads": recipe_threads,
            "flops_per_step": flops,
            "steps_per_epoch": steps,
            "flops_per_epoch": per_epoch,
            "lower_bound_seconds": bounds,
            "lower_bound_seconds_at_peak": per_epoch / (peak * 1e9),
            "measured_epoch_seconds": measured,
            "measured_raw_epoch_seconds": raw,
            "measured_on_images": len(train),
        }
        rows.append(
            [
                arch,
                recipe.batch_size,
                f"{flops / 1e6:.2f}",
                steps,
                f"{per_epoch / 1e9:.1f}",
                f"{per_epoch / (peak * 1e9):.3f}",
                f"{bounds[large][str(recipe_threads)]:.3f}",
                # Only the MLP's products have this shape; the CNN's bound there means nothing.
                f"{bounds[small][str(recipe_threads)]:.3f}" if arch == "mlp" else "-",
                f"{measured:.2f}",
            ]
        )

    print()
    print(f"float32 torch.mm rate (GFLOP/s), best of {TRIALS} trials:")
    print(markdown_table(["shape"] + [f"{c} thread(s)" for c in thread_counts], rate_rows))
    print()
    scaled = "" if len(train) == MNIST_TRAIN_IMAGES else f", scaled from {len(train)} images"
    print(
        "Seconds per 60,000-image epoch: FLOPs / rate (matrix products and convolutions "
        f"only) against digitrec's measured time (min of 2 epochs{scaled})"
    )
    headers = [
        "network",
        "batch",
        "MFLOP/step",
        "steps/epoch",
        "GFLOP/epoch",
        "bound @ peak rate (s)",
        "bound @ 1024² rate, recipe threads (s)",
        "bound @ 64x784x64 rate, recipe threads (s)",
        "measured s/epoch",
    ]
    print(markdown_table(headers, rows))
    results = {
        "machine": machine(),
        "settings": {"quick": args.quick, "trial_seconds": trial_seconds, "trials": TRIALS},
        "matmul_gflops": rates,
        "peak_gflops": peak,
        "networks": networks,
    }
    path = write_json(args.out, "machine_limit", results)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

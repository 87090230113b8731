"""Inference speed: single-image latency and batch throughput of the "mlp" and "cnn" models.

Latency is ``digitrec.get_predicted_label`` on one uint8 (28, 28) image, timed call by
call after a warm-up; throughput is ``digitrec.predict`` on the MNIST test images, best
of three passes, after an untimed pass. The models are untrained (seed 0): their speed
does not depend on the weights. Both are measured with torch's default thread count
and with one thread.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from _common import RESULTS_DIR, machine, machine_line, markdown_table, threads, write_json

import digitrec

ARCHS: tuple[digitrec.Architecture, ...] = ("mlp", "cnn")
BATCH_SIZES = (1024, 4096)
WARMUP_CALLS = 20
PASSES = 3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=500, help="timed single-image calls")
    parser.add_argument(
        "--images", type=int, default=10_000, help="test images per throughput pass"
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 50 calls, 1000 images")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for inference.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls, args.images = 50, 1000
    if args.calls < 2 or args.images < 1:
        parser.error("--calls must be at least 2 and --images positive")
    return args


def latency_us(model: digitrec.DigitClassifier, image: torch.Tensor, calls: int) -> list[float]:
    for _ in range(WARMUP_CALLS):
        digitrec.get_predicted_label(model, image)
    samples = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        digitrec.get_predicted_label(model, image)
        samples.append((time.perf_counter_ns() - started) / 1000)
    return samples


def images_per_second(
    model: digitrec.DigitClassifier, data: digitrec.ImageDataset, batch_size: int
) -> float:
    digitrec.predict(model, data, batch_size=batch_size)
    best = float("inf")
    for _ in range(PASSES):
        started = time.perf_counter()
        digitrec.predict(model, data, batch_size=batch_size)
        best = min(best, time.perf_counter() - started)
    return len(data) / best


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(machine_line())
    test = digitrec.load_mnist("test")
    data = test[: args.images]
    image = test.images[0, 0]  # uint8, (28, 28)
    default_threads = torch.get_num_threads()
    thread_counts = sorted({default_threads, 1}, reverse=True)

    measurements: list[dict[str, Any]] = []
    rows: list[list[object]] = []
    for arch in ARCHS:
        model = digitrec.DigitClassifier(arch, seed=0).eval()  # as a served model would be
        for count in thread_counts:
            with threads(count):
                samples = latency_us(model, image, args.calls)
                throughput = {
                    str(size): images_per_second(model, data, size) for size in BATCH_SIZES
                }
            median = statistics.median(samples)
            p90 = statistics.quantiles(samples, n=10, method="inclusive")[-1]
            measurements.append(
                {
                    "arch": arch,
                    "threads": count,
                    "latency_median_us": median,
                    "latency_p90_us": p90,
                    "images_per_second": throughput,
                }
            )
            rows.append(
                [
                    arch,
                    count,
                    f"{median:.0f}",
                    f"{p90:.0f}",
                    *(f"{throughput[str(size)]:,.0f}" for size in BATCH_SIZES),
                ]
            )

    headers = ["model", "threads", "latency median (µs)", "latency p90 (µs)"] + [
        f"predict, batch {size} (images/s)" for size in BATCH_SIZES
    ]
    print()
    print(
        f"Latency: get_predicted_label on one uint8 28x28 image, {args.calls} calls after "
        f"{WARMUP_CALLS} warm-up calls. Throughput: predict on {len(data)} test images, "
        f"best of {PASSES}."
    )
    print(markdown_table(headers, rows))
    results = {
        "machine": machine(),
        "settings": {
            "calls": args.calls,
            "warmup_calls": WARMUP_CALLS,
            "images": len(data),
            "passes": PASSES,
            "batch_sizes": list(BATCH_SIZES),
            "quick": args.quick,
        },
        "measurements": measurements,
    }
    path = write_json(args.out, "inference", results)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

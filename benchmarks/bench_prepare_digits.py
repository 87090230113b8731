"""Real-world digits: prepare_digits' speed, and what it does for an MNIST-trained CNN.

Throughput is ``prepare_digits`` on a batch of 256 rendered 100x100 RGB photos (uint8),
on one thread, best of several passes after a warm-up. Accuracy is the "cnn" model
(trained here with its recipe, or loaded with ``--model``) on: the clean MNIST test
set; MNIST test digits rendered as photographs or scans of ink on paper (30-200 px,
off-centre, any scale, uneven lighting, blur, noise, dust, JPEG; see
``digitrec._synthetic``); and digits cropped tightly to their ink at 16x16 and 64x64.
Each is read once through ``prepare_digits`` and once through today's plain path,
grayscale and stretch to 28x28.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
from _common import RESULTS_DIR, machine, machine_line, markdown_table, threads, write_json

import digitrec
from digitrec._synthetic import render_photos, render_tight_crops
from digitrec.preprocessing import prepare_digits, resize_images

SPEED_BATCH = 256
SPEED_SIZE = (100, 100)
PASSES = 5
CROP_SIZES = (16, 64)
#: The issue's goals, in accuracy points.
PHOTO_GOAL = 0.97
PHOTO_MAX_GAP = 0.02
CROP_GOAL = 0.975
_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", type=Path, help="a saved model to load instead of training")
    parser.add_argument("--epochs", type=int, help="train for this many epochs (recipe: 15)")
    parser.add_argument("--photos", type=int, default=2000, help="rendered photos to read")
    parser.add_argument("--crops", type=int, default=10_000, help="tight crops per size")
    parser.add_argument("--seed", type=int, default=0, help="seed of the renderer")
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: 1 epoch on 2000 images, 100 of each"
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS_DIR, help="folder for prepare_digits.json/.txt"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.photos, args.crops = 1, 100, 100
    if args.photos < 1 or args.crops < 1 or (args.epochs is not None and args.epochs < 1):
        parser.error("--photos, --crops and --epochs must be positive")
    return args


def plain(images: Any) -> torch.Tensor:
    """Today's path: stretch to 28x28, then grayscale."""
    resized = resize_images(images, 28, mode="stretch")
    if resized.shape[1] == 3:
        resized = (resized * _LUMA).sum(dim=1, keepdim=True)
    return resized


def throughput(photos: torch.Tensor) -> float:
    with threads(1):
        prepare_digits(photos)
        best = float("inf")
        for _ in range(PASSES):
            started = time.perf_counter()
            prepare_digits(photos)
            best = min(best, time.perf_counter() - started)
    return len(photos) / best


def get_model(args: argparse.Namespace) -> tuple[digitrec.DigitClassifier, str]:
    if args.model is not None:
        return digitrec.load(args.model), f"loaded from {args.model}"
    train = digitrec.load_mnist("train")
    if args.quick:
        train = train[:2000]
    model = digitrec.DigitClassifier("cnn", seed=0)
    trainer = digitrec.Trainer(model, epochs=args.epochs, progress=False)
    started = time.perf_counter()
    trainer.fit(train)
    seconds = time.perf_counter() - started
    return model.eval(), (
        f"trained here: cnn recipe, {trainer.config.epochs} epochs on {len(train)} "
        f"images, {seconds:.0f} s"
    )


def accuracy(model: digitrec.DigitClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    return float((digitrec.predict(model, images) == labels).float().mean())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(machine_line())
    test = digitrec.load_mnist("test")

    speed_photos = torch.stack(
        render_photos(test.images[:SPEED_BATCH], seed=args.seed + 1, size=SPEED_SIZE)
    )
    images_per_second = throughput(speed_photos)
    print(
        f"\nprepare_digits on {SPEED_BATCH} RGB uint8 photos of {SPEED_SIZE[0]}x{SPEED_SIZE[1]}, "
        f"one thread, best of {PASSES}: {images_per_second:,.0f} images/s"
    )

    model, provenance = get_model(args)
    print(f"Model: {provenance}")
    rows: list[list[object]] = []
    results: dict[str, dict[str, float]] = {}

    clean = test if not args.quick else test[:1000]
    clean_accuracy = accuracy(model, clean.images, clean.labels)
    results["clean"] = {
        "plain": clean_accuracy,
        "prepare_digits": accuracy(model, prepare_digits(clean.images), clean.labels),
    }

    digits = test[: args.photos]
    started = time.perf_counter()
    photos = render_photos(digits.images, seed=args.seed)
    render_seconds = time.perf_counter() - started
    with threads(1):
        started = time.perf_counter()
        prepared = torch.stack([prepare_digits(photo) for photo in photos])
        one_by_one = len(photos) / (time.perf_counter() - started)
    stretched = torch.cat([plain(photo.unsqueeze(0)) for photo in photos])
    results["photos"] = {
        "plain": accuracy(model, stretched, digits.labels),
        "prepare_digits": accuracy(model, prepared, digits.labels),
    }

    crops = test[: args.crops]
    for size in CROP_SIZES:
        cropped = render_tight_crops(crops.images, size)
        results[f"crops_{size}"] = {
            "plain": accuracy(model, plain(cropped), crops.labels),
            "prepare_digits": accuracy(model, prepare_digits(cropped), crops.labels),
        }

    names = {
        "clean": f"clean MNIST test ({len(clean)})",
        "photos": f"photographed/scanned, 30-200 px ({len(digits)})",
        "crops_16": f"tight crops, 16x16 ({len(crops)})",
        "crops_64": f"tight crops, 64x64 ({len(crops)})",
    }
    for key, name in names.items():
        entry = results[key]
        rows.append([name, f"{100 * entry['plain']:.2f}%", f"{100 * entry['prepare_digits']:.2f}%"])
    photo_accuracy = results["photos"]["prepare_digits"]
    goals = {
        "throughput_2000_per_s": images_per_second >= 2000,
        "photos_at_least_97": photo_accuracy >= PHOTO_GOAL,
        "photos_within_2_points_of_clean": clean_accuracy - photo_accuracy <= PHOTO_MAX_GAP,
        "crops_at_least_97_5": all(
            results[f"crops_{size}"]["prepare_digits"] >= CROP_GOAL for size in CROP_SIZES
        ),
        "crops_never_worse_than_plain": all(
            results[f"crops_{size}"]["prepare_digits"] >= results[f"crops_{size}"]["plain"]
            for size in CROP_SIZES
        ),
    }
    table = markdown_table(["test images", "grayscale + stretch", "prepare_digits"], rows)
    summary = "\n".join(
        [
            machine_line(),
            "",
            f"prepare_digits throughput: {images_per_second:,.0f} images/s "
            f"({SPEED_BATCH} RGB uint8 {SPEED_SIZE[0]}x{SPEED_SIZE[1]} photos per call, one "
            f"thread, best of {PASSES}); one photo per call: {one_by_one:,.0f} images/s",
            f"Model: {provenance}",
            "",
            "Accuracy of the MNIST-trained CNN:",
            table,
            "",
            "Goals: "
            + ", ".join(f"{name} {'met' if met else 'NOT met'}" for name, met in goals.items()),
        ]
    )
    print()
    print("\n".join(summary.splitlines()[2:]))
    payload = {
        "machine": machine(),
        "settings": {
            "quick": args.quick,
            "model": provenance,
            "photos": len(digits),
            "crops": len(crops),
            "seed": args.seed,
            "speed_batch": SPEED_BATCH,
            "speed_size": list(SPEED_SIZE),
            "passes": PASSES,
            "render_seconds": render_seconds,
        },
        "images_per_second": images_per_second,
        "images_per_second_one_by_one": one_by_one,
        "accuracy": results,
        "goals": goals,
    }
    path = write_json(args.out, "prepare_digits", payload)
    (args.out / "prepare_digits.txt").write_text(summary + "\n", encoding="utf-8")
    print(f"\nwrote {path}")
    if not args.quick and not all(goals.values()):
        print("some goals were not met")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

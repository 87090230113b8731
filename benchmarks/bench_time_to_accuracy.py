"""Training seconds each recipe needs to reach its target test accuracy on MNIST.

Each recipe trains with ``fit(train, val=test)`` so that ``History.val_accuracy``
holds the test accuracy after every epoch. Seconds to target add up
``History.epoch_seconds`` (training steps only; the per-epoch evaluation is
excluded); the wall seconds of the whole ``fit`` call, evaluation included, are
reported beside them. Every fit runs after an untimed warm-up fit in the same
process, so one-time import costs are not counted.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import RESULTS_DIR, machine, machine_line, markdown_table, write_json

import digitrec


@dataclass(frozen=True)
class Recipe:
    arch: digitrec.Architecture
    target: float


RECIPES = {
    "mlp": Recipe("mlp", 0.97),
    "mlp-fast": Recipe("mlp", 0.97),
    "cnn": Recipe("cnn", 0.995),
}
QUICK_TRAIN_IMAGES = 5000
WARMUP_IMAGES = 512


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--seeds", type=int, default=1, help="train with seeds 0..N-1 (mean and std when N > 1)"
    )
    parser.add_argument(
        "--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES), metavar="RECIPE"
    )
    parser.add_argument(
        "--plot", type=Path, help="write a figure of accuracy against training seconds here"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: {QUICK_TRAIN_IMAGES} training images, 1 epoch, 1 seed",
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS_DIR, help="folder for time_to_accuracy.json"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds = 1
    if args.seeds < 1:
        parser.error("--seeds must be positive")
    return args


def run(
    name: str, seed: int, train: digitrec.ImageDataset, val: digitrec.ImageDataset, quick: bool
) -> dict[str, Any]:
    recipe = RECIPES[name]
    model = digitrec.DigitClassifier(recipe.arch, seed=seed)
    trainer = digitrec.Trainer(
        model, recipe=name, seed=seed, epochs=1 if quick else None, progress=False
    )
    started = time.perf_counter()
    history = trainer.fit(train, val=val)
    wall = time.perf_counter() - started
    cumulative = list(itertools.accumulate(history.epoch_seconds))
    reached = next(
        (epoch for epoch, acc in enumerate(history.val_accuracy) if acc >= recipe.target), None
    )
    return {
        "seed": seed,
        "config": trainer.config.to_dict(),
        "epochs": history.epochs,
        "val_accuracy": history.val_accuracy,
        "epoch_seconds": history.epoch_seconds,
        "first_epoch_at_target": None if reached is None else reached + 1,
        "train_seconds_to_target": None if reached is None else cumulative[reached],
        "final_accuracy": history.val_accuracy[-1],
        "train_seconds": cumulative[-1],
        "fit_wall_seconds": wall,
    }


def spread(values: list[float], scale: float, digits: int) -> str:
    text = f"{scale * statistics.fmean(values):.{digits}f}"
    if len(values) > 1:
        text += f" ± {scale * statistics.stdev(values):.{digits}f}"
    return text


def plot(path: Path, results: dict[str, Any]) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    for name, result in results.items():
        first = result["runs"][0]
        seconds = list(itertools.accumulate(first["epoch_seconds"]))
        axes.plot(seconds, first["val_accuracy"], marker="o", label=f"{name} (seed 0)")
    for target in sorted({result["target"] for result in results.values()}):
        axes.axhline(target, color="grey", linestyle="--", linewidth=1)
        axes.annotate(
            f"{100 * target:g}%",
            (0, target),
            xycoords=("axes fraction", "data"),
            xytext=(4, 2),
            textcoords="offset points",
        )
    axes.set_xscale("log")  # the MLP recipes take seconds, the CNN minutes
    axes.set_xlabel("cumulative training seconds (evaluation excluded), log scale")
    axes.set_ylabel("MNIST test accuracy")
    axes.set_title("Time to accuracy")
    axes.grid(alpha=0.3)
    axes.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(machine_line())
    train = digitrec.load_mnist("train")
    test = digitrec.load_mnist("test")
    if args.quick:
        train = train[:QUICK_TRAIN_IMAGES]

    results: dict[str, Any] = {}
    rows: list[list[object]] = []
    for name in args.recipes:
        # Untimed warm-up of this recipe's code path (the first torch optimizer imports
        # torch._dynamo, first calls allocate), on a few images.
        run(name, 0, train[:WARMUP_IMAGES], test[:WARMUP_IMAGES], quick=True)
        runs = [run(name, seed, train, test, args.quick) for seed in range(args.seeds)]
        for result in runs:
            print(
                f"{name} seed {result['seed']}: final {100 * result['final_accuracy']:.2f}% "
                f"after {result['train_seconds']:.2f} s of training "
                f"({result['fit_wall_seconds']:.2f} s wall)"
            )
        target = RECIPES[name].target
        finals = [result["final_accuracy"] for result in runs]
        totals = [result["train_seconds"] for result in runs]
        walls = [result["fit_wall_seconds"] for result in runs]
        hits = [result for result in runs if result["first_epoch_at_target"] is not None]
        entry: dict[str, Any] = {
            "target": target,
            "runs": runs,
            "seeds_reaching_target": len(hits),
            "mean_final_accuracy": statistics.fmean(finals),
            "mean_train_seconds": statistics.fmean(totals),
            "mean_fit_wall_seconds": statistics.fmean(walls),
        }
        if len(runs) > 1:
            entry["std_final_accuracy"] = statistics.stdev(finals)
            entry["std_train_seconds"] = statistics.stdev(totals)
        results[name] = entry
        if hits:
            epochs = sorted(result["first_epoch_at_target"] for result in hits)
            to_target = spread([result["train_seconds_to_target"] for result in hits], 1, 2)
            reached = f"{', '.join(map(str, epochs))} ({len(hits)}/{len(runs)} seeds)"
        else:
            reached, to_target = f"not reached (0/{len(runs)} seeds)", "-"
        rows.append(
            [
                name,
                f"{100 * target:g}%",
                reached,
                to_target,
                spread(finals, 100, 2) + "%",
                spread(totals, 1, 2),
                spread(walls, 1, 2),
            ]
        )

    headers = [
        "recipe",
        "target",
        "first epoch at target",
        "training s to target",
        "final accuracy",
        "training s total",
        "wall s of fit",
    ]
    seeds = f"seeds 0..{args.seeds - 1}, mean ± std" if args.seeds > 1 else "seed 0"
    print()
    print(f"Training on {len(train)} MNIST images, test accuracy on {len(test)}; {seeds}")
    print(markdown_table(headers, rows))
    output = {
        "machine": machine(),
        "settings": {
            "train_images": len(train),
            "test_images": len(test),
            "seeds": args.seeds,
            "quick": args.quick,
        },
        "recipes": results,
    }
    path = write_json(args.out, "time_to_accuracy", output)
    print(f"\nwrote {path}")
    if args.plot is not None:
        plot(args.plot, results)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

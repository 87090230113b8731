"""The headline comparison: the notebook's training pipeline against digitrec's "mlp" recipe.

The notebook: torchvision's MNIST with ToTensor and Normalize applied to each sample,
a DataLoader of batches of 64, the 784-64-32-10 network, cross-entropy, SGD (lr 0.01,
momentum 0.9) and the classic zero_grad/forward/backward/step loop on torch's default
thread count. digitrec: the same network, optimizer and batch size through
``Trainer(DigitClassifier("mlp", seed=s)).fit(train)``. Each round trains the notebook
for E epochs, then digitrec for E epochs, in one process.

Run with the .venv-bench environment (see README.md here); without torchvision the
notebook side is skipped and only digitrec's figures are reported.
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import shutil
import statistics
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from _common import RESULTS_DIR, machine, machine_line, markdown_table, write_json
from torch import nn

import digitrec

BATCH_SIZE = 64
QUICK_TRAIN_IMAGES = 6000
WARMUP_BATCHES = 10
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
SKIP_MESSAGE = "notebook side skipped because torchvision is absent"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--epochs", type=int, default=digitrec.RECIPES["mlp"].epochs, help="epochs per side"
    )
    parser.add_argument("--rounds", type=int, default=2, help="notebook-then-digitrec rounds")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: 1 epoch, 1 round, the first {QUICK_TRAIN_IMAGES} training images",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for notebook.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.rounds = 1, 1
    if args.epochs < 1 or args.rounds < 1:
        parser.error("--epochs and --rounds must be positive")
    return args


def import_torchvision() -> tuple[Any, Any] | str:
    """Return torchvision's datasets and transforms modules, or why they cannot be imported."""
    try:
        datasets = importlib.import_module("torchvision.datasets")
        transforms = importlib.import_module("torchvision.transforms")
    except Exception as error:  # a CUDA torchvision beside a CPU torch fails in several ways
        return f"{type(error).__name__}: {error}"
    return datasets, transforms


def build_mnist_root(folder: Path) -> None:
    """Put the bundled MNIST files, decompressed, where torchvision's MNIST looks for them."""
    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True)
    bundled = resources.files("digitrec") / "_data"
    for name in MNIST_FILES:
        with (
            (bundled / f"{name}.gz").open("rb") as packed,
            gzip.open(packed) as source,
            open(raw / name, "wb") as target,
        ):
            shutil.copyfileobj(source, target)


class Notebook:
    """The notebook's pipeline, kept as close to its cells as possible."""

    def __init__(self, datasets: Any, transforms: Any, root: Path, train_images: int) -> None:
        transform = transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
        )
        trainset = datasets.MNIST(str(root), train=True, download=False, transform=transform)
        if train_images < len(trainset):
            trainset = torch.utils.data.Subset(trainset, range(train_images))
        self.trainset = trainset
        self.testset = datasets.MNIST(str(root), train=False, download=False, transform=transform)

    @staticmethod
    def network() -> nn.Sequential:
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 64),
            nn.ReLU(),
            nn.Linear(64, 32),
            nn.ReLU(),
            nn.Linear(32, 10),
        )

    def train(
        self, seed: int, epochs: int, max_batches: int | None = None
    ) -> tuple[nn.Module, list[float]]:
        """Train a fresh network; return it and the seconds of each epoch."""
        torch.manual_seed(seed)
        model = self.network()
        trainloader = torch.utils.data.DataLoader(
            self.trainset, batch_size=BATCH_SIZE, shuffle=True
        )
        criterion = nn.CrossEntropyLoss()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        seconds = []
        for _ in range(epochs):
            running_loss = 0.0
            started = time.perf_counter()
            for batch, (images, labels) in enumerate(trainloader):
                if max_batches is not None and batch == max_batches:
                    break
                optimizer.zero_grad()
                output = model(images)
                loss = criterion(output, labels)
                loss.backward()
                optimizer.step()
                running_loss += loss.item()
            seconds.append(time.perf_counter() - started)
        return model, seconds

    def accuracy(self, model: nn.Module) -> float:
        testloader = torch.utils.data.DataLoader(self.testset, batch_size=BATCH_SIZE, shuffle=False)
        correct = total = 0
        with torch.no_grad():
            for images, labels in testloader:
                predicted = model(images).argmax(dim=1)
                correct += int((predicted == labels).sum())
                total += int(labels.shape[0])
        return correct / total


def train_digitrec(
    train: digitrec.ImageDataset, seed: int, epochs: int
) -> tuple[digitrec.DigitClassifier, list[float]]:
    model = digitrec.DigitClassifier("mlp", seed=seed)
    trainer = digitrec.Trainer(model, epochs=epochs, seed=seed, progress=False)
    history = trainer.fit(train)
    return model, history.epoch_seconds


def summary(seconds: list[float], accuracies: list[float]) -> dict[str, Any]:
    return {
        "epoch_seconds": seconds,
        "median_epoch_seconds": statistics.median(seconds),
        "min_epoch_seconds": min(seconds),
        "test_accuracy": accuracies,
        "mean_test_accuracy": statistics.fmean(accuracies),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(machine_line())
    train = digitrec.load_mnist("train")
    test = digitrec.load_mnist("test")
    if args.quick:
        train = train[:QUICK_TRAIN_IMAGES]
    default_threads = torch.get_num_threads()
    recipe = digitrec.RECIPES["mlp"]

    vision = import_torchvision()
    skip_reason = vision if isinstance(vision, str) else None
    if skip_reason is not None:
        print(
            f"{SKIP_MESSAGE} ({skip_reason}); see DEVELOPERS.md and benchmarks/README.md for "
            "an environment with torchvision (.venv-bench). Reporting digitrec's side only."
        )

    with tempfile.TemporaryDirectory() as tmp:
        notebook: Notebook | None = None
        if not isinstance(vision, str):
            build_mnist_root(Path(tmp))
            notebook = Notebook(*vision, Path(tmp), len(train))
            # Untimed warm-up: the first optimizer imports torch._dynamo, first calls allocate.
            notebook.train(seed=0, epochs=1, max_batches=WARMUP_BATCHES)
        train_digitrec(train[: WARMUP_BATCHES * BATCH_SIZE], seed=0, epochs=1)

        notebook_seconds: list[float] = []
        notebook_accuracy: list[float] = []
        digitrec_seconds: list[float] = []
        digitrec_accuracy: list[float] = []
        for seed in range(args.rounds):
            if notebook is not None:
                net, seconds = notebook.train(seed, args.epochs)
                notebook_seconds += seconds
                notebook_accuracy.append(notebook.accuracy(net))
                print(f"round {seed + 1}: notebook epochs {[round(s, 2) for s in seconds]} s")
            model, seconds = train_digitrec(train, seed, args.epochs)
            digitrec_seconds += seconds
            digitrec_accuracy.append(digitrec.evaluate_accuracy(model, test).accuracy)
            print(f"round {seed + 1}: digitrec epochs {[round(s, 2) for s in seconds]} s")

    ours = summary(digitrec_seconds, digitrec_accuracy)
    theirs = summary(notebook_seconds, notebook_accuracy) if notebook is not None else None
    results: dict[str, Any] = {
        "machine": machine(),
        "settings": {
            "epochs": args.epochs,
            "rounds": args.rounds,
            "train_images": len(train),
            "test_images": len(test),
            "batch_size": BATCH_SIZE,
            "quick": args.quick,
        },
        "notebook": theirs,
        "notebook_skipped": skip_reason,
        "digitrec": {**ours, "recipe": recipe.to_dict(), "threads": recipe.num_threads},
        "speedup_median": None,
        "speedup_min": None,
    }
    if theirs is not None:
        theirs["threads"] = default_threads
        results["speedup_median"] = theirs["median_epoch_seconds"] / ours["median_epoch_seconds"]
        results["speedup_min"] = theirs["min_epoch_seconds"] / ours["min_epoch_seconds"]

    headers = [
        "pipeline",
        "threads",
        "median s/epoch",
        "min s/epoch",
        f"test accuracy after {args.epochs} epoch(s), mean of {args.rounds}",
    ]
    rows: list[list[object]] = []
    if theirs is not None:
        rows.append(
            [
                "notebook (torchvision, DataLoader, torch.optim.SGD lr 0.01)",
                default_threads,
                f"{theirs['median_epoch_seconds']:.3f}",
                f"{theirs['min_epoch_seconds']:.3f}",
                f"{100 * theirs['mean_test_accuracy']:.2f}%",
            ]
        )
    else:
        rows.append(["notebook", "-", "skipped", "skipped", "skipped"])
    rows.append(
        [
            'digitrec Trainer, recipe "mlp"',
            recipe.num_threads,
            f"{ours['median_epoch_seconds']:.3f}",
            f"{ours['min_epoch_seconds']:.3f}",
            f"{100 * ours['mean_test_accuracy']:.2f}%",
        ]
    )
    if theirs is not None:
        rows.append(
            [
                "speed-up (notebook / digitrec)",
                "",
                f"{results['speedup_median']:.1f}x",
                f"{results['speedup_min']:.1f}x",
                "",
            ]
        )
    print()
    print(
        f"Training on {len(train)} MNIST images, {args.epochs} epoch(s) x {args.rounds} "
        f"round(s), batch {BATCH_SIZE}; test accuracy on {len(test)} images"
    )
    print(markdown_table(headers, rows))
    path = write_json(args.out, "notebook", results)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

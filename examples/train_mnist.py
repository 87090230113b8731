"""Train a digit classifier on MNIST and evaluate it: the classic notebook as a script.

The steps are the notebook's, from start to finish, through digitrec's public API:

1. load MNIST's training and test splits (the copy bundled with digitrec, so no
   download is needed; the model normalizes the pixels itself);
2. build the network: by default the notebook's Sequential MLP 784 -> 64 -> 32 -> 10;
3. train it with cross-entropy and SGD on batches of 64, reporting the loss per epoch;
4. show the predicted and actual label of a few test images, one image at a time;
5. optionally plot the loss curve and sample images with their labels;
6. print the notebook's summary: images tested, number correct and accuracy.

Every training setting not given on the command line comes from the recipe for
the architecture (``digitrec.RECIPES``).

Examples:
    python examples/train_mnist.py
    python examples/train_mnist.py --arch cnn --device auto --plots figures/
    python examples/train_mnist.py --limit 5000 --epochs 1 --show 5
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import get_args

import digitrec


def _count(text: str) -> int:
    """Parse a non-negative integer; digitrec itself checks the training settings."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser of this example."""
    recipes = "; ".join(
        f"{arch}: {config.epochs} epochs, batches of {config.batch_size}, "
        f"{config.optimizer} lr {config.lr:g}"
        for arch, config in digitrec.RECIPES.items()
    )
    parser = argparse.ArgumentParser(
        description=(
            "Train a digitrec.DigitClassifier on the MNIST copy bundled with digitrec, "
            "print the loss per epoch, a few per-image predictions and the test accuracy."
        ),
        epilog=f"Training settings left out come from the architecture's recipe ({recipes}).",
    )
    parser.add_argument(
        "--arch",
        choices=get_args(digitrec.Architecture),
        default="mlp",
        help="network: 'mlp' is the notebook's 784-64-32-10 MLP, 'cnn' a small CNN "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--epochs", type=int, help="passes over the training set (default: recipe's)"
    )
    parser.add_argument(
        "--batch-size", type=int, help="images per optimizer step (default: recipe's)"
    )
    parser.add_argument(
        "--optimizer", choices=get_args(digitrec.OptimizerName), help="(default: recipe's)"
    )
    parser.add_argument("--lr", type=float, help="peak learning rate (default: recipe's)")
    parser.add_argument(
        "--device",
        default="cpu",
        help="'cpu', 'cuda', 'cuda:N', 'mps' or 'auto' (CUDA, then MPS, then CPU) "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the initial weights and of the shuffling; the same seed gives the "
        "same result on the CPU (default: %(default)s)",
    )
    parser.add_argument(
        "--show",
        type=_count,
        default=10,
        metavar="N",
        help="print the predicted and actual label of the first N test images "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help="write loss.png and predictions.png to DIR (needs matplotlib)",
    )
    parser.add_argument(
        "--limit",
        type=_count,
        metavar="N",
        help="train on the first N training images only, for quick runs (default: all 60000)",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="do not report progress on stderr while training",
    )
    return parser


def _save_plots(
    model: digitrec.DigitClassifier,
    history: digitrec.History,
    test: digitrec.ImageDataset,
    folder: Path,
    device: str,
) -> None:
    # matplotlib is optional: digitrec.plotting is imported only when plots are asked for.
    from digitrec.plotting import plot_loss_curve, plot_predictions

    folder.mkdir(parents=True, exist_ok=True)
    loss_path = folder / "loss.png"
    plot_loss_curve(history).savefig(loss_path, dpi=100)
    print(f"Saved the loss curve to {loss_path}")
    predictions_path = folder / "predictions.png"
    plot_predictions(model, test, count=16, columns=8, device=device).savefig(
        predictions_path, dpi=100
    )
    print(f"Saved sample predictions to {predictions_path}")


def main(argv: list[str] | None = None) -> int:
    """Run the example with the command-line arguments ``argv`` (``sys.argv[1:]`` if None).

    Returns:
        The exit status: 0 on success, 1 if digitrec refused the settings or data.
    """
    args = build_parser().parse_args(argv)
    arch: digitrec.Architecture = args.arch
    device: str = args.device
    try:
        if args.plots is not None:
            # Fail now, not after training, if matplotlib is missing.
            importlib.import_module("digitrec.plotting")

        # 1. Data: the bundled MNIST splits, as uint8 pixels the model normalizes itself.
        train = digitrec.load_mnist("train")
        test = digitrec.load_mnist("test")
        if args.limit is not None:
            train = train[: args.limit]

        # 2. The network, with weights drawn from the seed.
        model = digitrec.DigitClassifier(arch, seed=args.seed)

        # 3. Training: cross-entropy, with the recipe's settings unless overridden.
        trainer = digitrec.Trainer(
            model,
            device=device,
            epochs=args.epochs,
            batch_size=args.batch_size,
            optimizer=args.optimizer,
            lr=args.lr,
            seed=args.seed,
            progress=not args.no_progress,
        )
        config = trainer.config
        parameters = sum(p.numel() for p in model.parameters())
        print(f"digitrec {digitrec.__version__}, device {trainer.device}")
        print(f"Model: {arch} with {parameters:,} parameters")
        print(f"Data: {len(train)} training images, {len(test)} test images")
        print(
            f"Training: {_plural(config.epochs, 'epoch')}, batches of {config.batch_size}, "
            f"{config.optimizer} with lr {config.lr:g}, momentum {config.momentum:g}, "
            f"{config.lr_schedule} schedule, seed {config.seed}",
            flush=True,  # before the progress lines, which go to stderr
        )
        started = time.perf_counter()
        history = trainer.fit(train)
        wall_seconds = time.perf_counter() - started
        print()
        print(history)
        print(
            f"Training time: {sum(history.epoch_seconds):.2f} s in training steps, "
            f"{wall_seconds:.2f} s wall"
        )

        # 4. The notebook's per-image check: predicted vs actual label, one image at a time.
        shown = min(args.show, len(test))
        if shown:
            print()
        for index in range(shown):
            image, actual = test[index]
            predicted = digitrec.get_predicted_label(model, image, device=device)
            print(f"image {index}: predicted {predicted}, actual {actual}")

        # 5. Figures, only when asked for.
        if args.plots is not None:
            print()
            _save_plots(model, history, test, args.plots, device)

        # 6. The notebook's summary.
        result = digitrec.evaluate_accuracy(model, test, device=device)
    except digitrec.DigitrecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print()
    print(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

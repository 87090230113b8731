"""Train the notebook's MLP briefly, then predict a few MNIST test digits one by one.

For each chosen test image the script prints the label that
``digitrec.get_predicted_label`` gives it, the actual label, whether the two agree
and the model's probability for its prediction (``digitrec.predict_proba``). With
``--output`` it also saves a figure of the images titled with predicted and actual
labels (mistakes framed in red).

Examples:
    python examples/predict_digits.py
    python examples/predict_digits.py --start 100 --count 16 --output predictions.png
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import digitrec

DEFAULT_EPOCHS = 2


def _count(text: str) -> int:
    """Parse a non-negative integer; digitrec itself checks the training settings."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser of this example."""
    parser = argparse.ArgumentParser(
        description=(
            "Train digitrec's MLP on the bundled MNIST for a few epochs, then print the "
            "predicted and actual label of some test images, with the model's confidence."
        ),
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=DEFAULT_EPOCHS,
        help="passes over the training set; the other settings are the MLP recipe's "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--limit",
        type=_count,
        metavar="N",
        help="train on the first N training images only (default: all 60000)",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="'cpu', 'cuda', 'cuda:N', 'mps' or 'auto' (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the initial weights and of the shuffling (default: %(default)s)",
    )
    parser.add_argument(
        "--count",
        type=_count,
        default=8,
        metavar="K",
        help="how many test images to predict (default: %(default)s)",
    )
    parser.add_argument(
        "--start",
        type=_count,
        default=0,
        metavar="INDEX",
        help="index of the first test image (default: %(default)s)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        metavar="PATH",
        help="save a PNG of the images with predicted and actual labels to PATH "
        "(needs matplotlib; default: save nothing)",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="do not report progress on stderr while training",
    )
    return parser


def _save_figure(
    model: digitrec.DigitClassifier, sample: digitrec.ImageDataset, path: Path, device: str
) -> None:
    # matplotlib is optional: digitrec.plotting is imported only when a figure is asked for.
    from digitrec.plotting import plot_predictions

    figure = plot_predictions(
        model, sample, count=len(sample), columns=min(8, len(sample)), device=device
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100)


def main(argv: list[str] | None = None) -> int:
    """Run the example with the command-line arguments ``argv`` (``sys.argv[1:]`` if None).

    Returns:
        The exit status: 0 on success, 1 if digitrec refused the settings or data.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    device: str = args.device
    start: int = args.start
    try:
        if args.output is not None:
            # Fail now, not after training, if matplotlib is missing.
            importlib.import_module("digitrec.plotting")
        train = digitrec.load_mnist("train")
        test = digitrec.load_mnist("test")
        if args.count < 1 or start + args.count > len(test):
            parser.error(
                f"--start {start} with --count {args.count} goes past the last of the "
                f"{len(test)} test images"
            )
        if args.limit is not None:
            train = train[: args.limit]

        model = digitrec.DigitClassifier("mlp", seed=args.seed)
        trainer = digitrec.Trainer(
            model, device=device, epochs=args.epochs, seed=args.seed, progress=not args.no_progress
        )
        print(
            f"Training the MLP on {len(train)} images for {trainer.config.epochs} "
            f"epoch{'' if trainer.config.epochs == 1 else 's'} on {trainer.device}",
            flush=True,  # before the progress lines, which go to stderr
        )
        history = trainer.fit(train)
        print(f"Final training loss: {history.train_loss[-1]:.4f}")
        print()

        sample = test[start : start + args.count]
        probabilities = digitrec.predict_proba(model, sample, device=device)
        correct = 0
        for offset in range(len(sample)):
            image, actual = sample[offset]
            predicted = digitrec.get_predicted_label(model, image, device=device)
            correct += predicted == actual
            verdict = "right" if predicted == actual else "WRONG"
            top_probability, top_label = probabilities[offset].max(dim=0)
            print(
                f"image {start + offset}: predicted {predicted}, actual {actual}  {verdict}  "
                f"(top probability {float(top_probability):.3f} for {int(top_label)})"
            )
        print()
        print(f"Correct: {correct} of {len(sample)} ({100 * correct / len(sample):.2f}%)")

        if args.output is not None:
            _save_figure(model, sample, args.output, device)
            print(f"Saved the figure to {args.output}")
    except digitrec.DigitrecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

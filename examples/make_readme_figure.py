"""Draw the README's figure: test digits with the seed network's predictions, mistakes marked.

Trains the notebook's network (``DigitClassifier("mlp", seed=0)``) with the ``"mlp"``
recipe on the bundled MNIST, then plots the first 12 test images and the first 4 test
images it gets wrong with ``digitrec.plotting.plot_predictions``: right predictions
have a green title, mistakes a red title and a thick red frame. The default output is
``docs/_static/sample_predictions.png``, the figure README.md shows; rerun this script
and commit the PNG when the plot or the recipe changes. On the CPU the same seed gives
the same figure. Needs the ``plot`` extra (matplotlib).

Examples:
    python examples/make_readme_figure.py
    python examples/make_readme_figure.py --output predictions.png --limit 5000 --epochs 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import digitrec

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "_static" / "sample_predictions.png"
FIRST = 12
MISTAKES = 4


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser of this example."""
    parser = argparse.ArgumentParser(
        description="Train the seed MLP on the bundled MNIST and plot sample test "
        "predictions, mistakes marked, for the README."
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="PNG file to write (default: docs/_static/sample_predictions.png)",
    )
    parser.add_argument(
        "--epochs", type=int, help="passes over the training set (default: the recipe's)"
    )
    parser.add_argument(
        "--limit", type=int, help="train on the first N training images only (default: all)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the example with the command-line arguments ``argv`` (``sys.argv[1:]`` if None).

    Returns:
        The exit status: 0 on success, 1 if digitrec refused the settings.
    """
    args = build_parser().parse_args(argv)
    output: Path = args.output
    try:
        from digitrec.plotting import plot_predictions

        train = digitrec.load_mnist("train")
        test = digitrec.load_mnist("test")
        if args.limit is not None:
            train = train[: args.limit]
        model = digitrec.DigitClassifier("mlp", seed=0)
        digitrec.Trainer(model, epochs=args.epochs, progress=False).fit(train)
        wrong = (digitrec.predict(model, test) != test.labels).nonzero().flatten()
        shown = torch.cat([torch.arange(FIRST), wrong[wrong >= FIRST][:MISTAKES]])
        figure = plot_predictions(model, test[shown], count=len(shown), columns=8)
        output.parent.mkdir(parents=True, exist_ok=True)
        # No software version in the file, so the PNG changes only when the picture does.
        figure.savefig(output, dpi=100, metadata={"Software": None})
    except digitrec.DigitrecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(digitrec.evaluate_accuracy(model, test))
    print(f"Saved {len(shown)} sample predictions to {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``digitrec evaluate``: the notebook's summary, the full report or its JSON for a model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..data import ImageDataset, load_mnist
from ..evaluation import (
    evaluate,
    evaluate_accuracy,
)
from ..models import load
from ._common import Formatter, add_device, examples


def add_parser(commands: Any) -> None:
    """Add the ``evaluate`` subparser to ``commands``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "evaluate",
        help="measure a saved model on labelled data",
        formatter_class=Formatter,
        description=(
            "Evaluate a saved model on labelled images: by default the bundled MNIST test\n"
            "split, or an IDX pair, or a split of a MedMNIST .npz file. Prints the notebook's\n"
            "summary (images tested, number correct, accuracy); --report prints per-class\n"
            "precision, sensitivity, specificity and F1, ROC AUC, calibration and the\n"
            "confusion matrix, and --json the same figures as JSON."
        ),
        epilog=examples(
            "digitrec evaluate mlp.safetensors",
            "digitrec evaluate mlp.safetensors --report",
            "digitrec evaluate fashion.safetensors --idx t10k-images.gz t10k-labels.gz",
            "digitrec evaluate pneumonia.safetensors --npz pneumoniamnist.npz --json > report.json",
        ),
    )
    parser.add_argument("model", type=Path, metavar="MODEL", help="a model file saved by digitrec")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--idx",
        nargs=2,
        type=Path,
        metavar=("IMAGES", "LABELS"),
        help="evaluate on an IDX pair of images and labels (default: the bundled MNIST test split)",
    )
    source.add_argument(
        "--npz", type=Path, metavar="PATH", help="evaluate on a split of a MedMNIST .npz file"
    )
    parser.add_argument(
        "--split",
        choices=("train", "val", "test"),
        help="with --npz: the split to evaluate on (default: test)",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--report", action="store_true", help="print the full classification report"
    )
    output.add_argument(
        "--json",
        action="store_true",
        help="print the full report as JSON on stdout (undefined values as null)",
    )
    add_device(parser)
    parser.set_defaults(handler=run, command_parser=parser)


def run(args: argparse.Namespace) -> int:
    """Run ``digitrec evaluate`` with parsed ``args``; return the exit status."""
    model = load(args.model, device=args.device)
    if args.npz is not None:
        data = ImageDataset.from_npz(args.npz, args.split or "test")
    elif args.idx is not None:
        data = ImageDataset.from_idx(*args.idx)
    else:
        data = load_mnist("test")
    if args.report or args.json:
        report = evaluate(model, data, device=args.device)
        print(json.dumps(report.to_dict(), indent=2) if args.json else report)
    else:
        print(evaluate_accuracy(model, data, device=args.device))
    return 0

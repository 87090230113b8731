"""``digitrec train``: train on bundled MNIST, an IDX pair or a MedMNIST file; evaluate; save."""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import torch

from .._version import __version__
from ..data import ImageDataset, dataset_sha256, load_mnist
from ..evaluation import (
    AccuracyResult,
    ClassificationReport,
    calibrate,
    evaluate,
)
from ..models import Architecture, DigitClassifier, save
from ..training import RECIPES, History, OptimizerName, Trainer
from ._common import Formatter, add_device, class_names_list, examples, positive_int


def recipes_text() -> str:
    """One line per named recipe, for the help text."""
    return "\n".join(
        f"  {name:<13}  {config.epochs} epochs, batches of {config.batch_size}, "
        f"{config.optimizer} lr {config.lr:g}, {config.lr_schedule} schedule"
        f"{', augmentation' if config.augment else ''}"
        for name, config in RECIPES.items()
    )


def add_parser(commands: Any) -> None:
    """Add the ``train`` subparser to ``commands``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "train",
        help="train a model and save it",
        formatter_class=Formatter,
        description=(
            "Train a DigitClassifier, evaluate it on test data and save it with its training\n"
            "settings, the sha256 of its training data and its test metrics.\n\n"
            "Data, one of:\n"
            "  (default)      the MNIST copy bundled with digitrec: train on its 60,000\n"
            "                 training images, evaluate on its 10,000 test images\n"
            "  --idx I L      an IDX pair (MNIST, Fashion-MNIST, EMNIST, ...); evaluate on\n"
            "                 --test-idx I L, or else on a seeded 10% split of the pair\n"
            "  --npz PATH     a MedMNIST .npz file: train on its train split, calibrate the\n"
            "                 probabilities on its val split, evaluate on its test split\n\n"
            "Training settings left out come from the recipe (--recipe), by default the one\n"
            "named after --arch:\n" + recipes_text()
        ),
        epilog=examples(
            "digitrec train --output mlp.safetensors",
            "digitrec train --arch cnn --device auto --output cnn.safetensors --plots figures/",
            "digitrec train --idx train-images.gz train-labels.gz \\",
            "    --test-idx t10k-images.gz t10k-labels.gz --output fashion.safetensors",
            "digitrec train --npz pneumoniamnist.npz --class-names normal,pneumonia \\",
            "    --arch cnn --output pneumonia.safetensors",
        ),
    )
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        required=True,
        metavar="PATH",
        help="where to save the trained model (a .safetensors file; required)",
    )
    parser.add_argument(
        "--arch",
        choices=get_args(Architecture),
        default="mlp",
        help="network: 'mlp' is the notebook's 784-64-32-10 MLP, 'cnn' a small CNN "
        "(default: %(default)s)",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--idx",
        nargs=2,
        type=Path,
        metavar=("IMAGES", "LABELS"),
        help="train on an IDX pair of images and labels, gzipped or not",
    )
    source.add_argument(
        "--npz",
        type=Path,
        metavar="PATH",
        help="train on a MedMNIST .npz file (its train, val and test splits)",
    )
    parser.add_argument(
        "--test-idx",
        nargs=2,
        type=Path,
        metavar=("IMAGES", "LABELS"),
        help="with --idx: evaluate on this IDX pair instead of a 10%% split of the training pair",
    )
    parser.add_argument(
        "--class-names",
        type=class_names_list,
        metavar="A,B,...",
        help="with --idx or --npz: names of the classes in label order, saved with the model",
    )
    parser.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        help="training recipe to start from (default: the one named after --arch)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        metavar="N",
        help="passes over the training data (default: the recipe's)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        metavar="N",
        help="images per optimizer step (default: the recipe's)",
    )
    parser.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's)")
    parser.add_argument(
        "--optimizer", choices=get_args(OptimizerName), help="(default: the recipe's)"
    )
    add_device(parser)
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the initial weights, the shuffling and the --idx test split; the same "
        "seed gives the same model on the CPU (default: %(default)s)",
    )
    parser.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help="write loss.png, predictions.png, confusion_matrix.png and reliability.png "
        "to DIR (needs matplotlib)",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="do not report progress on stderr while training",
    )
    # For quick runs and tests; documented in the command-line reference, not in --help.
    parser.add_argument("--limit", type=positive_int, metavar="N", help=argparse.SUPPRESS)
    parser.set_defaults(handler=run, command_parser=parser)


@dataclass
class _TrainingData:
    train: ImageDataset
    val: ImageDataset | None
    test: ImageDataset
    source: str


def _training_data(args: argparse.Namespace) -> _TrainingData:
    names: list[str] | None = args.class_names
    if args.npz is not None:
        train, val, test = (
            ImageDataset.from_npz(args.npz, split, class_names=names)
            for split in ("train", "val", "test")
        )
        return _TrainingData(
            train, val, test, f"MedMNIST file {str(args.npz)!r}: train, val and test splits"
        )
    if args.idx is not None:
        train = ImageDataset.from_idx(*args.idx, class_names=names)
        pair = f"IDX pair {str(args.idx[0])!r}, {str(args.idx[1])!r}"
        if args.test_idx is not None:
            test = ImageDataset.from_idx(*args.test_idx, class_names=names)
            tests = f"{str(args.test_idx[0])!r}, {str(args.test_idx[1])!r}"
            return _TrainingData(train, None, test, f"{pair}; test IDX pair {tests}")
        train, test = train.split(0.1, seed=args.seed)
        return _TrainingData(
            train, None, test, f"{pair}; test: a 10% split of it with seed {args.seed}"
        )
    return _TrainingData(
        load_mnist("train"), None, load_mnist("test"), "bundled MNIST: train and test splits"
    )


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def run(args: argparse.Namespace) -> int:
    """Run ``digitrec train`` with parsed ``args``; return the exit status."""
    if args.plots is not None:
        # Fail now, not after training, if matplotlib is missing.
        importlib.import_module("digitrec.plotting")
    data = _training_data(args)
    train = data.train
    limit: int | None = args.limit
    if limit is not None and limit < len(train):
        train = train[:limit]
    splits = [split for split in (train, data.val, data.test) if split is not None]
    names = train.class_names
    classes = len(names) if names is not None else max(split.num_classes for split in splits)
    model = DigitClassifier(
        args.arch,
        input_shape=train.image_shape,
        num_classes=classes,
        class_names=names,
        seed=args.seed,
    )
    trainer = Trainer(
        model,
        device=args.device,
        recipe=args.recipe,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        seed=args.seed,
        progress=not args.no_progress,
    )
    config = trainer.config
    used = f" (the first {len(train):,})" if len(train) < len(data.train) else ""
    held_out = f", {len(data.val):,} for calibration" if data.val is not None else ""
    parameters = sum(p.numel() for p in model.parameters())
    print(f"digitrec {__version__}, device {trainer.device}")
    print(f"Data: {data.source}")
    print(f"      {len(train):,} training images{used}{held_out}, {len(data.test):,} test images")
    print(
        f"Model: {model.arch} with {parameters:,} parameters, input {model.input_shape}, "
        f"{model.num_classes} classes"
    )
    print(
        f"Training: {_plural(config.epochs, 'epoch')}, batches of {config.batch_size}, "
        f"{config.optimizer} with lr {config.lr:g}, {config.lr_schedule} schedule, "
        f"seed {config.seed}",
        flush=True,  # before the progress lines, which go to stderr
    )
    history = trainer.fit(train)
    print()
    print(history)
    if data.val is not None:
        temperature = calibrate(model, data.val, device=trainer.device)
        print(f"Calibrated on the val split: softmax temperature {temperature:.3f}")
    report = evaluate(model, data.test, device=trainer.device)
    metadata = {
        "train_config": config.to_dict(),
        "train_sha256": dataset_sha256(train.images, train.labels),
        "data": {
            "source": data.source,
            "train_images": len(train),
            "train_limit": limit,
            "calibration_images": len(data.val) if data.val is not None else None,
            "test_images": len(data.test),
        },
        "history": history.to_dict(),
        "test_metrics": report.to_dict(),
    }
    path = save(model, args.output, metadata=metadata)
    print(f"Saved the model to {path}")
    if args.plots is not None:
        _save_plots(args.plots, model, history, data.test, report, trainer.device)
    print()
    # The report already counted the test set: its confusion matrix's diagonal is the
    # number correct, so the notebook's summary needs no second pass over the data.
    correct = int(report.confusion_matrix.trace())
    print(AccuracyResult(total=report.total, correct=correct))
    return 0


def _save_plots(
    folder: Path,
    model: DigitClassifier,
    history: History,
    test: ImageDataset,
    report: ClassificationReport,
    device: torch.device,
) -> None:
    from ..plotting import (
        plot_confusion_matrix,
        plot_loss_curve,
        plot_predictions,
        plot_reliability_diagram,
    )

    folder.mkdir(parents=True, exist_ok=True)
    figures = {
        "loss.png": plot_loss_curve(history),
        "predictions.png": plot_predictions(model, test, device=device),
        "confusion_matrix.png": plot_confusion_matrix(report),
        "reliability.png": plot_reliability_diagram(report),
    }
    for name, figure in figures.items():
        figure.savefig(folder / name, dpi=100)
    print(f"Saved {', '.join(figures)} to {folder}")

"""Train, calibrate and evaluate a classifier on a MedMNIST data set such as PneumoniaMNIST.

NOT FOR CLINICAL USE. This script is for research and education: MedMNIST is a
benchmark, and neither it nor a model trained here is a medical device.

The steps, through digitrec's public API:

1. read the train, validation and test splits of a MedMNIST ``.npz`` file
   (``ImageDataset.from_npz``), as raw ``uint8`` pixels that the model
   normalizes itself;
2. build the small CNN with one output per class, carrying the class names;
3. train it with the CNN recipe (``digitrec.RECIPES["cnn"]``) on the training split;
4. evaluate it on the test split (``digitrec.evaluate``) and print its calibration;
5. fit the softmax temperature on the validation split (``digitrec.calibrate``,
   never on the test split) and print the full test report: per-class
   sensitivity and specificity, ROC AUC, calibration, accuracy at coverage and
   the confusion matrix;
6. abstain on the test images the model is not confident about
   (``digitrec.predict_or_abstain``) and report the accuracy on the rest;
7. optionally save the confusion matrix and the reliability diagram, and the
   report as JSON.

PneumoniaMNIST (chest X-rays, normal or pneumonia, CC BY 4.0) ships with this
project in ``../shared/data/medmnist``; elsewhere, get it or another MedMNIST
data set with the ``medmnist`` package (``pip install medmnist``), which saves
``<name>.npz`` files.

Examples:
    python examples/medical_pneumonia.py ../shared/data/medmnist/pneumoniamnist.npz
    python examples/medical_pneumonia.py pneumoniamnist.npz --plots figures/ --json report.json
    python examples/medical_pneumonia.py bloodmnist.npz --class-names a,b,c,d,e,f,g,h
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

import digitrec

CAVEAT = (
    "NOT FOR CLINICAL USE: research and education only. MedMNIST is a benchmark, "
    "and this model is not a medical device."
)
RECIPE = digitrec.RECIPES["cnn"]


def _class_names(text: str) -> list[str]:
    """Parse a comma-separated list of class names."""
    names = [name.strip() for name in text.split(",")]
    if any(not name for name in names):
        raise argparse.ArgumentTypeError(f"class names must not be empty, got {text!r}")
    return names


def _confidence(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value:g}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser of this example."""
    parser = argparse.ArgumentParser(
        description=(
            "Train digitrec's CNN on a MedMNIST data set, calibrate it on the validation "
            "split and report what a clinical reader asks for on the test split. "
            "Not for clinical use: research and education only."
        ),
        epilog=(
            f"Training uses the cnn recipe ({RECIPE.epochs} epochs, batches of "
            f"{RECIPE.batch_size}, {RECIPE.optimizer} lr {RECIPE.lr:g}, augmentation)."
        ),
    )
    parser.add_argument(
        "npz",
        type=Path,
        help="a MedMNIST .npz file with train, val and test splits; PneumoniaMNIST ships "
        "in this project's ../shared/data/medmnist, and the medmnist package "
        "(pip install medmnist) downloads the others",
    )
    parser.add_argument(
        "--class-names",
        type=_class_names,
        default=["normal", "pneumonia"],
        metavar="A,B,...",
        help="names of the classes in label order, one per class of the file "
        "(default: normal,pneumonia, PneumoniaMNIST's)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        help=f"passes over the training split (default: the cnn recipe's, {RECIPE.epochs})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the initial weights, the shuffling and the augmentation "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="'cpu', 'cuda', 'cuda:N', 'mps' or 'auto' (default: %(default)s)",
    )
    parser.add_argument(
        "--min-confidence",
        type=_confidence,
        default=0.9,
        metavar="P",
        help="abstain on test images whose calibrated top probability is below P "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help="write confusion_matrix.png and reliability.png to DIR (needs matplotlib)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="write the calibrated test report to PATH as JSON (NaN written as null)",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="do not report progress on stderr while training",
    )
    return parser


def _load(
    path: Path, names: list[str]
) -> tuple[digitrec.ImageDataset, digitrec.ImageDataset, digitrec.ImageDataset]:
    """Read the three splits and attach the class names, after checking there is one per class."""
    splits = [digitrec.ImageDataset.from_npz(path, split) for split in ("train", "val", "test")]
    classes = max(split.num_classes for split in splits)
    if len(names) != classes:
        raise digitrec.InvalidInputError(
            f"--class-names gives {len(names)} names ({','.join(names)}) but {path} holds "
            f"{classes} classes (labels 0 to {classes - 1}); give one name per class"
        )
    train, val, test = (
        digitrec.ImageDataset(split.images, split.labels, class_names=names) for split in splits
    )
    return train, val, test


def _save_plots(report: digitrec.ClassificationReport, folder: Path) -> None:
    # matplotlib is optional: digitrec.plotting is imported only when plots are asked for.
    from digitrec.plotting import plot_confusion_matrix, plot_reliability_diagram

    folder.mkdir(parents=True, exist_ok=True)
    matrix_path = folder / "confusion_matrix.png"
    plot_confusion_matrix(report).savefig(matrix_path, dpi=100)
    print(f"Saved the confusion matrix to {matrix_path}")
    reliability_path = folder / "reliability.png"
    plot_reliability_diagram(report).savefig(reliability_path, dpi=100)
    print(f"Saved the reliability diagram to {reliability_path}")


def main(argv: list[str] | None = None) -> int:
    """Run the example with the command-line arguments ``argv`` (``sys.argv[1:]`` if None).

    Returns:
        The exit status: 0 on success, 1 if digitrec refused the settings or data.
    """
    args = build_parser().parse_args(argv)
    device: str = args.device
    names: list[str] = args.class_names
    print(CAVEAT)
    print()
    try:
        if args.plots is not None:
            # Fail now, not after training, if matplotlib is missing.
            importlib.import_module("digitrec.plotting")

        # 1. Data: the three official splits, raw uint8 pixels with the class names.
        train, val, test = _load(args.npz, names)

        # 2. The network: one output per class; the model carries the class names.
        model = digitrec.DigitClassifier(
            "cnn",
            input_shape=train.image_shape,
            num_classes=len(names),
            class_names=names,
            seed=args.seed,
        )

        # 3. Training with the cnn recipe, on the training split only.
        trainer = digitrec.Trainer(
            model,
            device=device,
            epochs=args.epochs,
            seed=args.seed,
            progress=not args.no_progress,
        )
        config = trainer.config
        parameters = sum(p.numel() for p in model.parameters())
        print(f"digitrec {digitrec.__version__}, device {trainer.device}")
        print(f"Data: {args.npz.name}, images of shape {train.image_shape}")
        for split_name, split in (("train", train), ("val", val), ("test", test)):
            counts = ", ".join(
                f"{name} {int((split.labels == index).sum())}" for index, name in enumerate(names)
            )
            print(f"  {split_name:<5} {len(split):6d} images: {counts}")
        print(f"Model: cnn with {parameters:,} parameters, classes {', '.join(names)}")
        print(
            f"Training: {config.epochs} epochs, batches of {config.batch_size}, "
            f"{config.optimizer} with lr {config.lr:g}, seed {config.seed}",
            flush=True,  # before the progress lines, which go to stderr
        )
        started = time.perf_counter()
        history = trainer.fit(train)
        wall_seconds = time.perf_counter() - started
        print()
        print(history)
        print(f"Training time: {wall_seconds:.2f} s")

        # 4. The test report of the uncalibrated model: how far its confidences are off.
        before = digitrec.evaluate(model, test, device=device)
        print()
        print(
            f"Test set before calibration: ECE (15 bins): {before.ece:.4f}   "
            f"NLL: {before.nll:.4f}   Brier: {before.brier:.4f}   "
            f"accuracy: {100 * before.accuracy:.2f}%"
        )

        # 5. Temperature scaling, fitted on the validation split (never on the test split).
        temperature = digitrec.calibrate(model, val, device=device)
        report = digitrec.evaluate(model, test, device=device)
        print(f"Fitted temperature (on the validation split): {temperature:.3f}")
        print()
        print("Test report after calibration:")
        print(report)

        # 6. Abstention: refer the images the model is not sure about to a person.
        labels = digitrec.predict_or_abstain(
            model, test, min_confidence=args.min_confidence, device=device
        )
        kept = labels != digitrec.ABSTAINED
        abstained = len(test) - int(kept.sum())
        print()
        if int(kept.sum()):
            correct = int((labels[kept] == test.labels[kept]).sum())
            kept_accuracy = f"{100 * correct / int(kept.sum()):.2f}%"
        else:
            kept_accuracy = "n/a"
        print(
            f"Abstention at min confidence {args.min_confidence:g}: abstained on "
            f"{abstained} of {len(test)} test images ({100 * abstained / len(test):.2f}%), "
            f"accuracy on the other {int(kept.sum())}: {kept_accuracy}"
        )

        # 7. Figures and the JSON report, only when asked for.
        if args.plots is not None:
            print()
            _save_plots(report, args.plots)
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            with args.json.open("w", encoding="utf-8") as stream:
                json.dump(report.to_dict(), stream, indent=2, allow_nan=False)
                stream.write("\n")
            print(f"Saved the test report to {args.json}")
    except digitrec.DigitrecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The ``digitrec`` command: train, evaluate, predict, export and inspect models from a shell.

Installing digitrec puts a ``digitrec`` command on the ``PATH``; ``python -m
digitrec`` runs the same thing. It is a thin layer over the public API: every
subcommand parses its arguments, reads its files and calls the functions that
Python code would call.

* ``digitrec train`` builds a :class:`~digitrec.DigitClassifier`, trains it with
  :class:`~digitrec.Trainer` on the bundled MNIST, an IDX pair or a MedMNIST
  ``.npz`` file, evaluates it and saves it with :func:`~digitrec.save`, recording
  the training settings, a checksum of the training data and the test metrics.
* ``digitrec evaluate`` prints the notebook's summary
  (:func:`~digitrec.evaluate_accuracy`), the full
  :class:`~digitrec.ClassificationReport` or its JSON.
* ``digitrec predict`` labels PNG, JPEG and ``.npy`` images.
* ``digitrec export`` writes an ONNX or TorchScript file.
* ``digitrec info`` shows what a model file records.

Errors that digitrec raises on purpose (:class:`~digitrec.DigitrecError`) print
``digitrec: error: <message>`` on stderr and exit with status 1; invalid command
lines exit with status 2. :doc:`/cli` describes every option.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import numpy as np
import torch

from ._version import __version__
from .checkpoint import dataset_sha256, load, read_metadata, save
from .data import ImageDataset, load_mnist
from .errors import (
    DataFileError,
    DataNotFoundError,
    DigitrecError,
    InvalidInputError,
    MissingDependencyError,
)
from .evaluation import (
    AccuracyResult,
    ClassificationReport,
    calibrate,
    evaluate,
    evaluate_accuracy,
)
from .inference import predict_proba
from .models import Architecture, DigitClassifier
from .training import RECIPES, History, OptimizerName, Trainer

__all__ = ["main"]

_PROG = "digitrec"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_ARRAY_SUFFIXES = (".npy",)
_SUPPORTED_SUFFIXES = _IMAGE_SUFFIXES + _ARRAY_SUFFIXES
_DEVICE_HELP = "'cpu', 'cuda', 'cuda:N', 'mps' or 'auto' (CUDA, then MPS, then CPU)"


# -- Argument types -----------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _class_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if any(not name for name in names):
        raise argparse.ArgumentTypeError(
            f"class names must be a comma-separated list without empty names, got {text!r}"
        )
    return names


# -- Parser -------------------------------------------------------------------


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keep the line breaks of descriptions and epilogs (the examples), wrap the options."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _recipes_text() -> str:
    return "\n".join(
        f"  {name:<13}  {config.epochs} epochs, batches of {config.batch_size}, "
        f"{config.optimizer} lr {config.lr:g}, {config.lr_schedule} schedule"
        f"{', augmentation' if config.augment else ''}"
        for name, config in RECIPES.items()
    )


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="cpu", help=f"where to compute: {_DEVICE_HELP} (default: %(default)s)"
    )


def _add_train_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "train",
        help="train a model and save it",
        formatter_class=_Formatter,
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
            "named after --arch:\n" + _recipes_text()
        ),
        epilog=_examples(
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
        type=_class_names,
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
    _add_device(parser)
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
    parser.add_argument("--limit", type=_positive_int, metavar="N", help=argparse.SUPPRESS)
    parser.set_defaults(handler=_train, command_parser=parser)


def _add_evaluate_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "evaluate",
        help="measure a saved model on labelled data",
        formatter_class=_Formatter,
        description=(
            "Evaluate a saved model on labelled images: by default the bundled MNIST test\n"
            "split, or an IDX pair, or a split of a MedMNIST .npz file. Prints the notebook's\n"
            "summary (images tested, number correct, accuracy); --report prints per-class\n"
            "precision, sensitivity, specificity and F1, ROC AUC, calibration and the\n"
            "confusion matrix, and --json the same figures as JSON."
        ),
        epilog=_examples(
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
    _add_device(parser)
    parser.set_defaults(handler=_evaluate, command_parser=parser)


def _add_predict_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "predict",
        help="label images with a saved model",
        formatter_class=_Formatter,
        description=(
            "Label images with a saved model and print, per image, the predicted label and its\n"
            "probability (calibrated when the model was). Reads PNG and JPEG images (.png,\n"
            ".jpg, .jpeg; converted to grayscale or RGB to match the model) and numpy arrays\n"
            "(.npy: (H, W), (C, H, W) or (H, W, C), uint8 0-255 or float 0-1). A folder\n"
            "stands for the files of those types in it, in name order. Images of another size\n"
            "than the model's input are resized (bilinear), with a note on stderr."
        ),
        epilog=_examples(
            "digitrec predict mlp.safetensors digit.png",
            "digitrec predict mlp.safetensors scans/ more/digit.npy",
            "digitrec predict mlp.safetensors scans/ --json > predictions.json",
        ),
    )
    parser.add_argument("model", type=Path, metavar="MODEL", help="a model file saved by digitrec")
    parser.add_argument(
        "images",
        type=Path,
        nargs="+",
        metavar="IMAGE",
        help="a .png, .jpg, .jpeg or .npy file, or a folder of them",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print a JSON list of {"path", "label", "class_index", "probability"}',
    )
    _add_device(parser)
    parser.set_defaults(handler=_predict, command_parser=parser)


def _add_export_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "export",
        help="export a saved model to ONNX or TorchScript",
        formatter_class=_Formatter,
        description=(
            "Export a saved model with digitrec.export.export, for runtimes without digitrec:\n"
            "ONNX (ONNX Runtime and others; needs the onnx and onnxscript packages) or\n"
            "TorchScript (torch.jit.load in Python or LibTorch). The exported program takes\n"
            "uint8 pixels of shape (N, C, H, W), preprocessing included, and returns the logits\n"
            "and the calibrated probabilities."
        ),
        epilog=_examples(
            "digitrec export mlp.safetensors mlp.onnx",
            "digitrec export cnn.safetensors cnn.pt --format torchscript",
        ),
    )
    parser.add_argument("model", type=Path, metavar="MODEL", help="a model file saved by digitrec")
    parser.add_argument("out", type=Path, metavar="OUT", help="the file to write")
    parser.add_argument(
        "--format",
        choices=("onnx", "torchscript"),
        default="onnx",
        help="file format (default: %(default)s)",
    )
    parser.add_argument(
        "--opset",
        type=_positive_int,
        metavar="N",
        help="ONNX operator set to target (default: the exporter's, 18 or newer)",
    )
    parser.set_defaults(handler=_export, command_parser=parser)


def _add_info_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "info",
        help="show what a model file records",
        formatter_class=_Formatter,
        description=(
            "Show the header of a saved model without loading its weights: format, model\n"
            "config and class names, softmax temperature, library versions, when it was saved,\n"
            "and the metadata recorded with it (for models from 'digitrec train': the training\n"
            "settings, the sha256 of the training data, the data source and the test metrics)."
        ),
        epilog=_examples(
            "digitrec info mlp.safetensors",
            "digitrec info mlp.safetensors --json",
        ),
    )
    parser.add_argument("model", type=Path, metavar="MODEL", help="a model file saved by digitrec")
    parser.add_argument("--json", action="store_true", help="print the header as raw JSON")
    parser.set_defaults(handler=_info, command_parser=parser)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        formatter_class=_Formatter,
        description=(
            "Train, evaluate and use digitrec image classifiers from the command line.\n"
            "Run 'digitrec COMMAND --help' for the options of each command."
        ),
        epilog=_examples(
            "digitrec train --output mlp.safetensors",
            "digitrec evaluate mlp.safetensors --report",
            "digitrec predict mlp.safetensors digit.png",
            "digitrec export mlp.safetensors mlp.onnx",
            "digitrec info mlp.safetensors",
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    commands.required = True
    _add_train_parser(commands)
    _add_evaluate_parser(commands)
    _add_predict_parser(commands)
    _add_export_parser(commands)
    _add_info_parser(commands)
    return parser


def _check_combinations(args: argparse.Namespace) -> None:
    """Report options that only make sense together with others (exits with status 2)."""
    parser: argparse.ArgumentParser = args.command_parser
    if args.command == "train":
        if args.test_idx is not None and args.idx is None:
            parser.error("--test-idx needs --idx")
        if args.class_names is not None and args.idx is None and args.npz is None:
            parser.error("--class-names needs --idx or --npz (MNIST has its own)")
    if args.command == "evaluate" and args.split is not None and args.npz is None:
        parser.error("--split needs --npz")


# -- train --------------------------------------------------------------------


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


def _train(args: argparse.Namespace) -> int:
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
    from .plotting import (
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


# -- evaluate -----------------------------------------------------------------


def _evaluate(args: argparse.Namespace) -> int:
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


# -- predict ------------------------------------------------------------------


def _image_files(paths: Sequence[Path]) -> Iterator[Path]:
    """Yield the files named, and the supported files of the folders named, in order."""
    supported = ", ".join(_SUPPORTED_SUFFIXES)
    for path in paths:
        if path.is_dir():
            found = sorted(
                entry
                for entry in path.iterdir()
                if entry.is_file() and entry.suffix.lower() in _SUPPORTED_SUFFIXES
            )
            if not found:
                raise DataNotFoundError(f"the folder {str(path)!r} holds no {supported} files")
            yield from found
        elif not path.exists():
            raise DataNotFoundError(f"no image file or folder at {str(path)!r}")
        elif path.suffix.lower() not in _SUPPORTED_SUFFIXES:
            raise InvalidInputError(
                f"{str(path)!r}: unsupported file type {path.suffix or '(none)'!r}; "
                f"predict reads PNG and JPEG images and numpy arrays ({supported})"
            )
        else:
            yield path


def _pil_image_module() -> Any:
    try:
        return importlib.import_module("PIL.Image")
    except ImportError as error:
        raise MissingDependencyError(
            "reading PNG and JPEG images, or resizing .npy images, needs Pillow: pip install pillow"
        ) from error


def _read_pil(path: Path, image_module: Any) -> Any:
    try:
        with image_module.open(path) as image:
            image.load()
            return image.copy()
    except (OSError, ValueError, SyntaxError) as error:  # PIL's errors for unreadable files
        raise DataFileError(f"{str(path)!r} is not a readable image: {error}") from error


def _read_npy(path: Path) -> torch.Tensor:
    """Return the pixels of a ``.npy`` image as ``uint8`` ``(C, H, W)``."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DataFileError(f"{str(path)!r} is not a readable .npy file: {error}") from error
    try:
        # from_arrays takes every layout and dtype digitrec accepts and gives uint8 NCHW.
        pixels = ImageDataset.from_arrays(array[np.newaxis], np.zeros(1, np.int64)).images
    except DigitrecError as error:
        raise type(error)(
            f"{str(path)!r} must hold one image of shape (H, W), (C, H, W) or (H, W, C): {error}"
        ) from error
    return pixels[0]


def _fit_to_model(path: Path, image: Any, model: DigitClassifier, image_module: Any) -> Any:
    """Convert a PIL image to the model's channels and resize it to the model's input."""
    channels, height, width = model.input_shape
    image = image.convert("L" if channels == 1 else "RGB")
    if image.size != (width, height):
        print(
            f"note: {path}: resized {image.size[0]}x{image.size[1]} -> {width}x{height}",
            file=sys.stderr,
        )
        image = image.resize((width, height), image_module.Resampling.BILINEAR)
    return image


def _pil_to_tensor(image: Any) -> torch.Tensor:
    array = np.asarray(image, dtype=np.uint8)
    tensor = torch.from_numpy(array.copy())
    return tensor.unsqueeze(0) if tensor.dim() == 2 else tensor.permute(2, 0, 1)


def _load_image(path: Path, model: DigitClassifier) -> torch.Tensor:
    """Return one image file as ``uint8`` ``(C, H, W)`` pixels of the model's input shape."""
    if path.suffix.lower() in _ARRAY_SUFFIXES:
        pixels = _read_npy(path)
        if tuple(pixels.shape) == model.input_shape:
            return pixels
        image_module = _pil_image_module()
        planes = pixels.permute(1, 2, 0).numpy()
        image = image_module.fromarray(planes[:, :, 0] if planes.shape[2] == 1 else planes)
    else:
        image_module = _pil_image_module()
        image = _read_pil(path, image_module)
    return _pil_to_tensor(_fit_to_model(path, image, model, image_module))


def _predict(args: argparse.Namespace) -> int:
    model = load(args.model, device=args.device)
    files = list(_image_files(args.images))
    batch = torch.stack([_load_image(path, model) for path in files])
    probabilities = predict_proba(model, batch, device=args.device)
    confidence, indices = probabilities.max(dim=1)
    names = model.class_names or tuple(str(index) for index in range(model.num_classes))
    results = [
        {
            "path": str(path),
            "label": names[int(index)],
            "class_index": int(index),
            "probability": float(probability),
        }
        for path, index, probability in zip(files, indices, confidence, strict=True)
    ]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            print(f"{result['path']}: {result['label']} (probability {result['probability']:.3f})")
    return 0


# -- export -------------------------------------------------------------------


def _export(args: argparse.Namespace) -> int:
    try:
        # Imported here: the exporters need optional packages (onnx) that the rest does not.
        from .export import export
    except DigitrecError:
        raise
    except ImportError as error:
        raise MissingDependencyError(f"export is not available: {error}") from error
    model = load(args.model)
    written = export(model, args.out, format=args.format, opset=args.opset)
    print(f"Exported {args.model} to {written} ({args.format})")
    return 0


# -- info ---------------------------------------------------------------------


def _scalar(value: Any, *, nested: bool = False) -> str:
    """Format a header value on one line: JSON, with floats rounded to 6 digits."""
    if isinstance(value, float):
        return f"{value:.1f}" if value.is_integer() else f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(item, nested=True) for item in value) + "]"
    if isinstance(value, dict):
        items = (f"{json.dumps(key)}: {_scalar(item, nested=True)}" for key, item in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, str) and not nested:
        return value
    return json.dumps(value)


def _tree(mapping: dict[str, Any], indent: int = 1) -> Iterator[str]:
    pad = "  " * indent
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            yield f"{pad}{key}:"
            yield from _tree(value, indent + 1)
        else:
            yield f"{pad}{key}: {_scalar(value)}"


def _info(args: argparse.Namespace) -> int:
    header = read_metadata(args.model)
    if args.json:
        print(json.dumps(header, indent=2))
        return 0
    config = header.get("config")
    config = config if isinstance(config, dict) else {}
    names = config.get("class_names")
    versions = header.get("versions")
    lines = [
        f"file: {args.model}",
        f"format: {header.get('format')}",
        f"saved at: {header.get('saved_at')}",
    ]
    if isinstance(versions, dict):
        lines.append("versions: " + ", ".join(f"{key} {value}" for key, value in versions.items()))
    lines.append(f"temperature: {_scalar(header.get('temperature'))}")
    lines.append(f"class names: {', '.join(map(str, names)) if names else '(none recorded)'}")
    lines.append("config:")
    lines.extend(_tree(config))
    known = {"format", "saved_at", "versions", "temperature", "config", "metadata"}
    lines.extend(f"{key}: {_scalar(value)}" for key, value in header.items() if key not in known)
    metadata = header.get("metadata")
    if isinstance(metadata, dict) and metadata:
        lines.append("metadata:")
        lines.extend(_tree(metadata))
    else:
        lines.append("metadata: (none)")
    print("\n".join(lines))
    return 0


# -- main ---------------------------------------------------------------------


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def main(argv: list[str] | None = None) -> int:
    """Run the ``digitrec`` command with the arguments ``argv`` (``sys.argv[1:]`` if None).

    Args:
        argv: The command-line arguments after the program name, for example
            ``["evaluate", "mlp.safetensors", "--report"]``.

    Returns:
        The exit status. 0 on success; 1 when digitrec refused the input, with
        the message on stderr as ``digitrec: error: ...``; 2 for an invalid
        command line (also 0 for ``--help`` and ``--version``); 130 when interrupted.
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        _check_combinations(args)
    except SystemExit as exit_:  # --help, --version and usage errors
        return _exit_status(exit_.code)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (DigitrecError, OSError) as error:
        print(f"{_PROG}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted", file=sys.stderr)
        return 130

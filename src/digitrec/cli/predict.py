"""``digitrec predict``: label image files with a saved model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import DataNotFoundError, InvalidInputError
from ..inference import classify
from ..io import IMAGE_SUFFIXES, list_image_files, read_images
from ..models import DigitClassifier, load, pretrained
from ._common import Formatter, add_device, examples

_MODEL_SUFFIX = ".safetensors"


def add_parser(commands: Any) -> None:
    """Add the ``predict`` subparser to ``commands``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "predict",
        help="label image files with a saved (or bundled) model",
        formatter_class=Formatter,
        description=(
            "Label image files and print, per image, the predicted label and its probability\n"
            "(calibrated when the model was). Reads everything digitrec.read_image reads:\n"
            "PNG, JPEG, BMP, TIFF, WebP (8- and 16-bit), .npy arrays and DICOM (with the\n"
            "dicom extra); a folder stands for the image files in it and its sub-folders.\n"
            "Images are prepared as the model's file says: a digit model's inputs are framed\n"
            "as MNIST's digits (polarity, cropping, centring: digitrec.prepare_digits), any\n"
            "other model's are resized with padding. A file that cannot be read is reported\n"
            "on stderr and the rest are labelled; the exit status is then 1.\n\n"
            "MODEL is a .safetensors file saved by digitrec; without one, the pretrained\n"
            "digit CNN bundled with digitrec is used."
        ),
        epilog=examples(
            "digitrec predict photo.jpg",
            "digitrec predict mlp.safetensors digit.png",
            "digitrec predict mlp.safetensors scans/ more/digit.npy",
            "digitrec predict xray.safetensors study/ --json > predictions.json",
        ),
    )
    parser.add_argument(
        "paths",
        type=Path,
        nargs="+",
        metavar="PATH",
        help="an optional model file (.safetensors), then image files or folders of them",
    )
    preparation = parser.add_mutually_exclusive_group()
    preparation.add_argument(
        "--prepare",
        dest="prepare",
        action="store_true",
        default=None,
        help="prepare every image, even those that already fit the model",
    )
    preparation.add_argument(
        "--no-prepare",
        dest="prepare",
        action="store_false",
        help="prepare nothing: images must already have the model's input shape",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print a JSON list of {"path", "label", "class_index", "probability"}',
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar while reading images"
    )
    add_device(parser, default=None)
    parser.set_defaults(handler=run, command_parser=parser)


def _model_and_images(paths: list[Path], device: str | None) -> tuple[DigitClassifier, list[Path]]:
    if paths[0].suffix == _MODEL_SUFFIX:
        if len(paths) == 1:
            raise InvalidInputError(f"no image to label: give image files after {paths[0]}")
        return load(paths[0], device=device or "cpu"), paths[1:]
    return pretrained("mnist-cnn", device=device or "cpu"), paths


def run(args: argparse.Namespace) -> int:
    """Run ``digitrec predict`` with parsed ``args``; return the exit status."""
    model, inputs = _model_and_images(args.paths, args.device)
    files = list_image_files(inputs)
    if not files:
        raise DataNotFoundError(
            f"no image files in {', '.join(str(path) for path in inputs)}; predict reads "
            f"{', '.join(sorted(IMAGE_SUFFIXES))}"
        )
    read = read_images(files, on_error="skip", progress=not args.no_progress)
    for path, reason in read.failures:
        print(f"digitrec: cannot read {path}: {reason}", file=sys.stderr)
    results = [
        {
            "path": str(path),
            "label": prediction.label,
            "class_index": prediction.class_index,
            "probability": prediction.confidence,
            "out_of_distribution": prediction.out_of_distribution,
        }
        for path, prediction in zip(
            read.paths, classify(model, read.images, prepare=args.prepare), strict=True
        )
    ]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            unusual = "  [unlike the training data]" if result["out_of_distribution"] else ""
            print(
                f"{result['path']}: {result['label']} "
                f"(probability {result['probability']:.3f}){unusual}"
            )
    return 1 if read.failures else 0

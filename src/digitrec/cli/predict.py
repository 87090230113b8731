"""``digitrec predict``: label image files with a saved model."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import ImageDataset
from ..errors import (
    DataFileError,
    DataNotFoundError,
    DigitrecError,
    InvalidInputError,
    MissingDependencyError,
)
from ..inference import predict_proba
from ..models import DigitClassifier, load
from ._common import Formatter, add_device, examples

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_ARRAY_SUFFIXES = (".npy",)
_SUPPORTED_SUFFIXES = _IMAGE_SUFFIXES + _ARRAY_SUFFIXES


def add_parser(commands: Any) -> None:
    """Add the ``predict`` subparser to ``commands``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "predict",
        help="label images with a saved model",
        formatter_class=Formatter,
        description=(
            "Label images with a saved model and print, per image, the predicted label and its\n"
            "probability (calibrated when the model was). Reads PNG and JPEG images (.png,\n"
            ".jpg, .jpeg; converted to grayscale or RGB to match the model) and numpy arrays\n"
            "(.npy: (H, W), (C, H, W) or (H, W, C), uint8 0-255 or float 0-1). A folder\n"
            "stands for the files of those types in it, in name order. Images of another size\n"
            "than the model's input are resized (bilinear), with a note on stderr."
        ),
        epilog=examples(
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
    add_device(parser)
    parser.set_defaults(handler=run, command_parser=parser)


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


def run(args: argparse.Namespace) -> int:
    """Run ``digitrec predict`` with parsed ``args``; return the exit status."""
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

"""Export a trained model to ONNX and check that ONNX Runtime agrees with PyTorch.

The script loads a model saved with ``digitrec.save`` (or, with ``--train``, first
trains the notebook's MLP for one epoch on the bundled MNIST, calibrates its
temperature and saves it to a temporary file), exports it with ``digitrec.export``
and runs the ONNX file under ONNX Runtime on a few MNIST test digits. For each it
prints the label ONNX Runtime predicts next to PyTorch's and the actual one, then
the largest absolute difference between the two runtimes' probabilities.

The exported program includes the preprocessing: it takes raw uint8 pixels of
shape (N, 1, 28, 28) for any N and returns the logits and the calibrated
probabilities, so serving it needs neither digitrec nor PyTorch, only
``onnxruntime`` and numpy. Needs the ``onnx`` extra: ``pip install "digitrec[onnx]"``.

Examples:
    python examples/export_onnx.py --train --output mlp.onnx
    python examples/export_onnx.py model.safetensors --output model.onnx --torchscript model.pt
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

import digitrec

DEFAULT_COUNT = 10


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser of this example."""
    parser = argparse.ArgumentParser(
        description=(
            "Export a digitrec model to ONNX (preprocessing included) and compare ONNX "
            "Runtime's predictions on MNIST test digits with PyTorch's."
        ),
    )
    parser.add_argument(
        "model",
        nargs="?",
        type=Path,
        help="a model file written by digitrec.save (or use --train)",
    )
    parser.add_argument(
        "--train",
        action="store_true",
        help="instead of loading a model, train the MLP for 1 epoch on the bundled MNIST, "
        "calibrate it and save it to a temporary file",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("model.onnx"),
        help="where to write the ONNX file (default: %(default)s)",
    )
    parser.add_argument(
        "--torchscript",
        type=Path,
        metavar="PATH",
        help="also export a TorchScript module to PATH and compare it too",
    )
    parser.add_argument(
        "--opset", type=int, help="ONNX operator set to target (default: the exporter's)"
    )
    parser.add_argument(
        "--count",
        type=_count,
        default=DEFAULT_COUNT,
        metavar="N",
        help="run the first N MNIST test digits (default: %(default)s)",
    )
    return parser


def _train_and_save(folder: Path) -> Path:
    """Train the MLP for one epoch, calibrate its temperature, save it and return the path."""
    train = digitrec.load_mnist("train")
    model = digitrec.DigitClassifier("mlp", seed=0)
    print("Training the MLP for 1 epoch on 50000 MNIST images...", flush=True)
    digitrec.Trainer(model, epochs=1, progress=False).fit(train[:50_000])
    temperature = digitrec.calibrate(model, train[50_000:])
    print(f"Calibrated temperature on the other 10000: {temperature:.3f}")
    return digitrec.save(model, folder / "mlp.safetensors")


def _max_difference(a: Any, b: Any) -> float:
    return float((torch.as_tensor(a) - torch.as_tensor(b)).abs().max())


def _run(args: argparse.Namespace, onnxruntime: Any, folder: Path) -> None:
    source: Path = _train_and_save(folder) if args.train else args.model
    model = digitrec.load(source)
    print(f"Loaded {source}: {model.arch}, input {model.input_shape}, {model.num_classes} classes")

    path = digitrec.export(model, args.output, opset=args.opset)
    print(f"Exported to ONNX: {path} ({path.stat().st_size:,} bytes)")

    test = digitrec.load_mnist("test")[: args.count]
    pixels = test.images  # raw uint8 (N, 1, 28, 28): the exported graph normalizes them itself
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    _, onnx_probabilities = session.run(None, {"pixels": pixels.numpy()})
    torch_probabilities = digitrec.predict_proba(model, pixels)
    onnx_labels = onnx_probabilities.argmax(axis=1).tolist()
    torch_labels = torch_probabilities.argmax(dim=1).tolist()

    print()
    for index, (onnx_label, torch_label, actual) in enumerate(
        zip(onnx_labels, torch_labels, test.labels.tolist(), strict=True)
    ):
        print(f"image {index}: onnx {onnx_label}, pytorch {torch_label}, actual {actual}")
    print()
    agree = sum(a == b for a, b in zip(onnx_labels, torch_labels, strict=True))
    print(f"ONNX Runtime and PyTorch agree on {agree} of {len(onnx_labels)} labels")
    difference = _max_difference(onnx_probabilities, torch_probabilities)
    print(f"Max absolute difference of probabilities (ONNX Runtime vs PyTorch): {difference:.2e}")

    if args.torchscript is not None:
        script_path = digitrec.export(model, args.torchscript, format="torchscript")
        print(f"Exported to TorchScript: {script_path} ({script_path.stat().st_size:,} bytes)")
        module = torch.jit.load(str(script_path))  # type: ignore[no-untyped-call]
        with torch.no_grad():
            _, script_probabilities = module(pixels)
        difference = _max_difference(script_probabilities, torch_probabilities)
        print(
            f"Max absolute difference of probabilities (TorchScript vs PyTorch): {difference:.2e}"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the example with the command-line arguments ``argv`` (``sys.argv[1:]`` if None).

    Returns:
        The exit status: 0 on success, 1 if digitrec refused the model or settings, or
        ONNX Runtime is not installed.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.train == (args.model is not None):
        parser.error("give a model file or --train (one of the two)")
    try:
        onnxruntime = importlib.import_module("onnxruntime")
    except ImportError:
        print(
            'error: this example needs ONNX Runtime: pip install "digitrec[onnx]"', file=sys.stderr
        )
        return 1
    try:
        with tempfile.TemporaryDirectory() as folder:
            _run(args, onnxruntime, Path(folder))
    except digitrec.DigitrecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

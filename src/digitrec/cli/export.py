"""``digitrec export``: export a saved model to ONNX or TorchScript."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import (
    DigitrecError,
    MissingDependencyError,
)
from ..models import load
from ._common import Formatter, examples, positive_int


def add_parser(commands: Any) -> None:
    """Add the ``export`` subparser to ``commands``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "export",
        help="export a saved model to ONNX or TorchScript",
        formatter_class=Formatter,
        description=(
            "Export a saved model with digitrec.export, for runtimes without digitrec:\n"
            "ONNX (ONNX Runtime and others; needs the onnx and onnxscript packages) or\n"
            "TorchScript (torch.jit.load in Python or LibTorch). The exported program takes\n"
            "uint8 pixels of shape (N, C, H, W), preprocessing included, and returns the logits\n"
            "and the calibrated probabilities."
        ),
        epilog=examples(
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
        type=positive_int,
        metavar="N",
        help="ONNX operator set to target (default: the exporter's, 18 or newer)",
    )
    parser.set_defaults(handler=run, command_parser=parser)


def run(args: argparse.Namespace) -> int:
    """Run ``digitrec export`` with parsed ``args``; return the exit status."""
    try:
        # Imported here: the exporters need optional packages (onnx) that the rest does not.
        from ..exporting import export
    except DigitrecError:
        raise
    except ImportError as error:
        raise MissingDependencyError(f"export is not available: {error}") from error
    model = load(args.model)
    written = export(model, args.out, format=args.format, opset=args.opset)
    print(f"Exported {args.model} to {written} ({args.format})")
    return 0

"""``digitrec explain``: which pixels made a model decide, as an overlay image."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any, get_args

from .._model_inputs import model_image
from ..attribution import ExplainMethod, explain
from ..inference import classify
from ..io import read_image
from ..models import load, pretrained
from ._common import Formatter, add_device, examples


def add_parser(commands: Any) -> None:
    """Add the ``explain`` subparser to ``commands``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "explain",
        help="show which pixels made a model decide (needs the explain extra)",
        formatter_class=Formatter,
        description=(
            "Explain one prediction: read IMAGE, prepare it as the model's file says, and\n"
            "write the attributions (Captum: integrated gradients, saliency or occlusion)\n"
            "over the prepared image to --output. Without MODEL, the bundled digit CNN is\n"
            'used. Needs pip install "digitrec[explain,plot]".'
        ),
        epilog=examples(
            "digitrec explain photo.jpg --output overlay.png",
            "digitrec explain cnn.safetensors digit.png --method occlusion --output o.png",
        ),
    )
    parser.add_argument(
        "paths",
        type=Path,
        nargs="+",
        metavar="[MODEL] IMAGE",
        help="an optional model file, then one image",
    )
    parser.add_argument(
        "--output", type=Path, required=True, help="the overlay image to write (PNG)"
    )
    parser.add_argument("--method", choices=get_args(ExplainMethod), default="integrated_gradients")
    parser.add_argument(
        "--target", type=int, default=None, help="class to explain (default: the predicted one)"
    )
    add_device(parser, default=None)
    parser.set_defaults(handler=run, command_parser=parser)


def run(args: argparse.Namespace) -> int:
    """Run ``digitrec explain`` with parsed ``args``; return the exit status."""
    plotting = importlib.import_module("digitrec.plotting")  # fails early without matplotlib
    paths: list[Path] = args.paths
    if len(paths) > 2 or (len(paths) == 2 and paths[0].suffix != ".safetensors"):
        args.command_parser.error("give one image, after an optional .safetensors model file")
    device = args.device or "cpu"
    model = (
        load(paths[0], device=device) if len(paths) == 2 else pretrained("mnist-cnn", device=device)
    )
    raw = read_image(paths[-1])
    [answer] = classify(model, [raw])
    image = model_image(model, raw, None)[0]
    target = answer.class_index if args.target is None else args.target
    attributions = explain(model, image, target=target, method=args.method)
    title = f"{paths[-1].name}: {answer.label} ({answer.confidence:.2f}), {args.method}"
    figure = plotting.plot_explanation(image, attributions, title=title)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output, dpi=120)
    print(f"{paths[-1]}: {answer.label} (probability {answer.confidence:.3f}); wrote {args.output}")
    return 0

"""The ``digitrec`` command's parser: one subparser per command module."""

from __future__ import annotations

import argparse

from .._version import __version__
from . import evaluate, explain, export, info, predict, serve, train
from ._common import PROG, Formatter, examples


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=Formatter,
        description=(
            "Train, evaluate and use digitrec image classifiers from the command line.\n"
            "Run 'digitrec COMMAND --help' for the options of each command."
        ),
        epilog=examples(
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
    train.add_parser(commands)
    evaluate.add_parser(commands)
    predict.add_parser(commands)
    export.add_parser(commands)
    info.add_parser(commands)
    serve.add_parser(commands)
    explain.add_parser(commands)
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


def check_combinations(args: argparse.Namespace) -> None:
    """Report options that only make sense together with others (exits with status 2)."""
    parser: argparse.ArgumentParser = args.command_parser
    if args.command == "train":
        if args.test_idx is not None and args.idx is None:
            parser.error("--test-idx needs --idx")
        if args.class_names is not None and args.idx is None and args.npz is None:
            parser.error("--class-names needs --idx or --npz (MNIST has its own)")
    if args.command == "evaluate" and args.split is not None and args.npz is None:
        parser.error("--split needs --npz")

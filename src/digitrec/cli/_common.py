"""What every subcommand's parser shares: argument types, the help layout, --device."""

from __future__ import annotations

import argparse

PROG = "digitrec"
_DEVICE_HELP = "'cpu', 'cuda', 'cuda:N', 'mps' or 'auto' (CUDA, then MPS, then CPU)"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def class_names_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if any(not name for name in names):
        raise argparse.ArgumentTypeError(
            f"class names must be a comma-separated list without empty names, got {text!r}"
        )
    return names


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keep the line breaks of descriptions and epilogs (the examples), wrap the options."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def add_device(parser: argparse.ArgumentParser, default: str | None = "cpu") -> None:
    """Add ``--device``; a ``None`` default computes where the model is loaded (the CPU)."""
    parser.add_argument(
        "--device",
        default=default,
        help=f"where to compute: {_DEVICE_HELP} (default: {default or 'cpu'})",
    )

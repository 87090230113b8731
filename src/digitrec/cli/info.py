"""``digitrec info``: show what a model file records."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..models import read_metadata
from ._common import Formatter, examples


def add_parser(commands: Any) -> None:
    """Add the ``info`` subparser to ``commands``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "info",
        help="show what a model file records",
        formatter_class=Formatter,
        description=(
            "Show the header of a saved model without loading its weights: format, model\n"
            "config and class names, softmax temperature, library versions, when it was saved,\n"
            "and the metadata recorded with it (for models from 'digitrec train': the training\n"
            "settings, the sha256 of the training data, the data source and the test metrics)."
        ),
        epilog=examples(
            "digitrec info mlp.safetensors",
            "digitrec info mlp.safetensors --json",
        ),
    )
    parser.add_argument("model", type=Path, metavar="MODEL", help="a model file saved by digitrec")
    parser.add_argument("--json", action="store_true", help="print the header as raw JSON")
    parser.set_defaults(handler=run, command_parser=parser)


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


def run(args: argparse.Namespace) -> int:
    """Run ``digitrec info`` with parsed ``args``; return the exit status."""
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

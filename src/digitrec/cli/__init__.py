"""The ``digitrec`` command: train, evaluate, predict, export and inspect models from a shell.

The package holds the parser (``_parser``) and one module per command, each
with its ``add_parser`` and ``run``; nothing in the library imports it.

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
import sys
from collections.abc import Callable

from ..errors import DigitrecError
from ._common import PROG
from ._parser import build_parser, check_combinations

__all__ = ["main"]


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
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        check_combinations(args)
    except SystemExit as exit_:  # --help, --version and usage errors
        return _exit_status(exit_.code)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (DigitrecError, OSError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130

"""``digitrec serve``: serve a model over HTTP, with a page to draw digits on."""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path
from typing import Any

from ._common import Formatter, examples, positive_int

_KEY_VARIABLE = "DIGITREC_API_KEY"


def add_parser(commands: Any) -> None:
    """Add the ``serve`` subparser to ``commands``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "serve",
        help="serve a model over HTTP (API and drawing page)",
        formatter_class=Formatter,
        description=(
            "Serve a model over HTTP with uvicorn: POST /v1/predict labels image files or\n"
            "JSON pixels, GET /v1/model describes the model, GET /health answers while the\n"
            "server runs, /docs shows the API, and / is a page to draw a digit or upload a\n"
            'photo. Needs the serve extra: pip install "digitrec[serve]".\n\n'
            "MODEL is a .safetensors file saved by digitrec; without one, the pretrained\n"
            "digit CNN bundled with digitrec is served. The server listens on 127.0.0.1\n"
            "only, unless --host says otherwise; put it behind a reverse proxy to expose it.\n"
            f"With --api-key (or ${_KEY_VARIABLE}) the /v1/ endpoints need the key.\n"
            "The model reads and classifies in a child process of its own, so that HTTP and\n"
            "the model use two cores (--no-model-process: a thread of the server's process).\n"
            "With --workers N, N processes share the port, each with its own copy of the\n"
            "model (and no model process unless --model-process says so). SIGTERM or Ctrl-C\n"
            "stops it gracefully."
        ),
        epilog=examples(
            "digitrec serve",
            "digitrec serve mlp.safetensors --port 8080",
            "digitrec serve --workers 2",
            "DIGITREC_API_KEY=secret digitrec serve mlp.safetensors --host 0.0.0.0",
        ),
    )
    parser.add_argument(
        "model",
        type=Path,
        nargs="?",
        metavar="MODEL",
        help="a model file saved by digitrec (default: the bundled mnist-cnn)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="the port to listen on (default: 8000)"
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get(_KEY_VARIABLE) or None,
        help=f"require this key on /v1/ endpoints (default: ${_KEY_VARIABLE}, if set)",
    )
    parser.add_argument(
        "--max-upload-bytes",
        type=int,
        default=10_000_000,
        help="the largest request body, answered 413 beyond (default: 10000000)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="torch threads per server process (default: 1; --workers uses more cores)",
    )
    parser.add_argument(
        "--max-batch-images",
        type=positive_int,
        default=64,
        help="images classified in one call when requests arrive together; 1: no batching "
        "(default: 64)",
    )
    parser.add_argument(
        "--batch-window-ms",
        type=float,
        default=2.0,
        help="how long a batch waits for more requests to join it (default: 2)",
    )
    parser.add_argument(
        "--model-process",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="read and classify in a child process, so HTTP and the model use two cores "
        "(default: on with one worker, off with --workers)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="server processes sharing the port, each with its own model (default: 1)",
    )
    parser.set_defaults(handler=run, command_parser=parser)


def run(args: argparse.Namespace) -> int:
    """Run ``digitrec serve`` with parsed ``args`` until stopped; return the exit status."""
    from ..serving._extra import require

    require("fastapi", "uvicorn", "python_multipart")
    import torch
    import uvicorn

    from ..serving import create_app

    # Small models run fastest on one thread per call; two threads per call on a
    # busy two-core machine spin against each other (10x slower, measured).
    torch.set_num_threads(args.threads)

    options: dict[str, Any] = {
        "api_key": args.api_key,
        "max_upload_bytes": args.max_upload_bytes,
        "max_batch_images": args.max_batch_images,
        "batch_window_ms": args.batch_window_ms,
        # Measured on two cores: a model process serves the most at 8 clients; with
        # workers, the cores are taken already (benchmarks/results/serving.txt).
        "model_process": args.workers == 1 if args.model_process is None else args.model_process,
    }
    # Built here even with workers: a bad model file or option fails now, once, clearly.
    app = create_app(args.model, **options)
    target: Any = app
    if args.workers > 1:
        from ..serving._workers import FACTORY, SETTINGS_VARIABLE, settings_json

        model = None if args.model is None else str(args.model.resolve())
        os.environ[SETTINGS_VARIABLE] = settings_json(model, args.threads, options)
        target = FACTORY
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for the
    # handler it found; with the default one the process would die with -15, so a
    # clean stop is made to end here, with status 0.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        uvicorn.run(
            target,
            host=args.host,
            port=args.port,
            log_level="info",
            workers=args.workers if args.workers > 1 else None,
            factory=args.workers > 1,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0

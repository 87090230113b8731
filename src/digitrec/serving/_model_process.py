"""The model in a process of its own: reading and classifying off the server's GIL.

In one server process the event loop (HTTP, multipart parsing, JSON answers) and
the model thread (decoding, preparing, classifying: hundreds of small tensor
operations) take turns on one interpreter lock, so on two cores they never run
at the same time. With ``create_app(model_process=True)`` the model thread hands
each batch to a child process instead, which holds its own copy of the model: the
two halves then run on two cores, and the batches stay as large as in one
process. A batch travels as the requests' ``load`` functions (``functools.partial``
of the readers over the uploaded bytes or the parsed JSON, which pickle) and
comes back as predictions or each request's own error.

The child is started with ``spawn`` (a fork of a process that runs threads and
torch is unsafe), on the first batch or by :meth:`ModelProcess.start`; if it
dies, the batch in flight is answered 503 and the next batch starts a new one.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import signal
import tempfile
import threading
from collections.abc import Sequence
from functools import partial
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from ._batcher import Answer, Load, run_jobs

#: How long :meth:`ModelProcess.close` waits for the child to finish its batch.
_CLOSE_SECONDS = 10.0


class ModelProcessStoppedError(RuntimeError):
    """The model's process ended while it held a batch (the server answers 503)."""


def _portable(answer: Answer) -> Answer:
    """``answer`` as it can cross to the parent: an error that does not pickle becomes text."""
    if isinstance(answer, BaseException):
        try:
            pickle.dumps(answer)
        except Exception:
            return RuntimeError(f"{type(answer).__name__}: {answer}")
    return answer


def _classify(classify: Any, model: Any, images: list[Any], prepare: bool | None) -> Any:
    return classify(model, images, prepare=prepare)


def _serve_batches(connection: Connection, model_path: str | None, threads: int) -> None:
    """The child's loop: load the model once, then answer batches until told to stop."""
    # Ctrl-C in a terminal reaches the whole process group: the server stops the child.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    from ..inference import classify
    from ..models import load, pretrained
    from ..models._ood_features import SEALED

    torch.set_num_threads(threads)
    model = pretrained("mnist-cnn") if model_path is None else load(model_path)
    SEALED.add(model)  # this process's own copy: nothing else can write to its weights
    connection.send("ready")
    while True:
        try:
            batch = connection.recv()
        except EOFError:
            return
        if batch is None:
            return
        answers = run_jobs(partial(_classify, classify, model), batch)
        connection.send([_portable(answer) for answer in answers])


class ModelProcess:
    """A child process that reads and classifies batches for the server; see the module."""

    def __init__(self, model_path: Path | None, threads: int = 1) -> None:
        self._model_path = None if model_path is None else str(model_path)
        self._threads = threads
        self._lock = threading.Lock()
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id, or ``None`` while none runs."""
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    def start(self) -> None:
        """Start the child and wait until its model is loaded (if it is not running)."""
        with self._lock:
            self._start()

    def _start(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(
            target=_serve_batches,
            args=(child, self._model_path, self._threads),
            name="digitrec-model",
            daemon=True,
        )
        process.start()
        child.close()
        try:
            ready = parent.recv()
        except EOFError as error:
            process.join(_CLOSE_SECONDS)
            raise ModelProcessStoppedError(
                f"the model process ended while loading the model (exit code {process.exitcode})"
            ) from error
        if ready != "ready":  # pragma: no cover - the child sends nothing else first
            raise ModelProcessStoppedError(f"the model process answered {ready!r}, not 'ready'")
        self._process, self._connection = process, parent

    def run(self, batch: Sequence[tuple[Load, bool | None]]) -> list[Answer]:
        """Read and classify ``batch`` (each request's ``load`` and ``prepare``) in the child."""
        with self._lock:
            self._start()
            connection = self._connection
            assert connection is not None
            try:
                connection.send(list(batch))
                answers: list[Answer] = connection.recv()
            except (EOFError, OSError) as error:
                self._stop(wait=False)
                raise ModelProcessStoppedError(
                    "the model process ended while it held this request; the next "
                    "request starts a new one"
                ) from error
            return answers

    def close(self) -> None:
        """Ask the child to stop after its batch, and end it if it does not."""
        with self._lock:
            self._stop(wait=True)

    def _stop(self, *, wait: bool) -> None:
        process, connection = self._process, self._connection
        self._process = self._connection = None
        if connection is not None:
            if wait:
                with contextlib.suppress(OSError):
                    connection.send(None)
            connection.close()
        if process is not None:
            process.join(_CLOSE_SECONDS if wait else 0.5)
            if process.is_alive():
                process.kill()
                process.join(_CLOSE_SECONDS)


def model_file_for(model: Any) -> tuple[Path | None, tempfile.TemporaryDirectory[str] | None]:
    """The model file the child loads, and the folder to remove when the server stops.

    The given path as it is (``None``: the bundled model), or a ``DigitClassifier``
    saved in a new temporary folder.
    """
    from ..models import DigitClassifier, save

    if model is None:
        return None, None
    if not isinstance(model, DigitClassifier):
        return Path(model), None
    folder = tempfile.TemporaryDirectory(prefix="digitrec-serve-")
    try:
        return save(model, Path(folder.name) / "served.safetensors"), folder
    except BaseException:
        folder.cleanup()
        raise

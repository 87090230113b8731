"""The ASGI app: :func:`create_app` builds the API and the page around one model."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from .._checks import check_bool, check_positive_int
from ..errors import DigitrecError, InvalidInputError, InvalidTypeError, MissingDependencyError
from ..inference import Prediction, classify
from ..io.tensorfile import versions
from ..models import DigitClassifier, load, pretrained, read_metadata
from ..models.bundled import PRETRAINED
from ._extra import missing_extra, require

try:
    from fastapi import Depends, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from pydantic import ValidationError
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise missing_extra("fastapi") from error

from ._batcher import MicroBatcher
from ._guards import BodySizeLimit, key_matches
from ._inputs import pixel_count, pixel_images, read_files
from ._model_process import ModelProcess, ModelProcessStoppedError, model_file_for
from .schemas import (
    ErrorResponse,
    HealthResponse,
    ModelInfo,
    PixelsRequest,
    PredictionResponse,
    PredictResponse,
)

__all__ = ["DEFAULT_MAX_PIXELS", "create_app"]

#: The largest image (width x height) the server reads: a 16-megapixel photo.
DEFAULT_MAX_PIXELS = 16_000_000

_STATIC = Path(__file__).resolve().parent / "static"
_FIELD = "file"
_PAGE_SECURITY = "default-src 'self'; img-src 'self' blob: data:; object-src 'none'"
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": HTTPStatus(code).phrase}
    for code in (400, 401, 413, 415, 422)
}
_PREDICT_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    _FIELD: {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "description": "one or more image files (anything read_image reads)",
                    }
                },
                "required": [_FIELD],
            }
        },
        "application/json": {"schema": PixelsRequest.model_json_schema()},
    },
}


@dataclass(frozen=True)
class _Served:
    model: DigitClassifier
    info: ModelInfo


def _describe(model: DigitClassifier, source: str, header: dict[str, Any] | None) -> ModelInfo:
    names = model.class_names or tuple(str(index) for index in range(model.num_classes))
    return ModelInfo(
        source=source,
        arch=model.arch,
        input_shape=list(model.input_shape),
        num_classes=model.num_classes,
        class_names=list(names),
        prepare=model.config.preparation,
        temperature=float(model.temperature),
        out_of_distribution=getattr(model, "ood", None) is not None,
        config=model.config.to_dict(),
        versions=dict(header["versions"]) if header else versions(),
        header=header,
    )


def _serve(model: DigitClassifier | str | os.PathLike[str] | None) -> _Served:
    if model is None:
        loaded = pretrained("mnist-cnn")
        bundled = resources.files("digitrec") / "_weights" / PRETRAINED["mnist-cnn"][0]
        with resources.as_file(bundled) as path:
            header = read_metadata(path)
        return _Served(loaded, _describe(loaded, "mnist-cnn (bundled)", header))
    if isinstance(model, DigitClassifier):
        return _Served(model.eval(), _describe(model, "in-memory model", None))
    if isinstance(model, (str, os.PathLike)):
        loaded = load(model)
        return _Served(loaded, _describe(loaded, Path(model).name, read_metadata(model)))
    raise InvalidTypeError(
        f"model must be a DigitClassifier, a model file's path or None, got {type(model).__name__}"
    )


def _error(status: int, kind: str, message: str, headers: Mapping[str, str] | None = None) -> Any:
    return JSONResponse(
        {"error": {"type": kind, "message": message}}, status_code=status, headers=headers
    )


def _add_error_handlers(app: FastAPI) -> None:
    async def library_error(request: Request, error: Exception) -> Any:
        status = 415 if isinstance(error, MissingDependencyError) else 400
        return _error(status, type(error).__name__, str(error))

    async def http_error(request: Request, error: Exception) -> Any:
        assert isinstance(error, HTTPException)
        kind = HTTPStatus(error.status_code).phrase.replace(" ", "").replace("-", "")
        return _error(error.status_code, kind, str(error.detail), error.headers)

    async def validation_error(request: Request, error: Exception) -> Any:
        assert isinstance(error, (RequestValidationError, ValidationError))
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
            for item in error.errors()[:5]
        )
        return _error(422, "InvalidInputError", f"the JSON body does not fit: {problems}")

    async def model_stopped(request: Request, error: Exception) -> Any:
        return _error(503, "ServiceUnavailable", str(error))

    async def unexpected(request: Request, error: Exception) -> Any:
        return _error(500, "InternalServerError", "the server failed; see its log")

    app.add_exception_handler(DigitrecError, library_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ValidationError, validation_error)
    app.add_exception_handler(ModelProcessStoppedError, model_stopped)
    app.add_exception_handler(Exception, unexpected)


async def _uploaded(request: Request, max_images: int) -> tuple[list[bytes], list[str]]:
    """The uploaded files' bytes and names, from the multipart field ``file``."""
    async with request.form(max_files=max_images, max_fields=max_images) as form:
        others = sorted({key for key in form if key != _FIELD})
        if others:
            raise InvalidInputError(f"expected image files in field {_FIELD!r}, got {others}")
        uploads = form.getlist(_FIELD)
        if not uploads:
            raise InvalidInputError(f"no image file: send one or more in field {_FIELD!r}")
        if not all(isinstance(upload, UploadFile) for upload in uploads):
            raise InvalidInputError(f"field {_FIELD!r} must hold files, not text")
        files = [upload for upload in uploads if isinstance(upload, UploadFile)]
        blobs = [await upload.read() for upload in files]
    names = [upload.filename or f"{_FIELD}[{index}]" for index, upload in enumerate(files)]
    return blobs, names


def _answer(predictions: list[Prediction]) -> Response:
    """The :class:`PredictResponse`, serialised by pydantic's core (no second validation)."""
    body = PredictResponse(
        predictions=[
            PredictionResponse(
                class_index=answer.class_index,
                label=answer.label,
                probabilities=list(answer.probabilities),
                confidence=answer.confidence,
                out_of_distribution=answer.out_of_distribution,
            )
            for answer in predictions
        ]
    )
    return Response(body.model_dump_json(), media_type="application/json")


def create_app(
    model: DigitClassifier | str | os.PathLike[str] | None = None,
    *,
    max_upload_bytes: int = 10_000_000,
    api_key: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_images: int = 64,
    max_batch_images: int = 64,
    batch_window_ms: float = 2.0,
    model_process: bool = False,
) -> FastAPI:
    """Build the HTTP app that serves ``model``: the API, its docs and the drawing page.

    Endpoints: ``GET /health``; ``GET /v1/model``; ``POST /v1/predict`` with image
    files in the multipart field ``file`` or JSON :class:`PixelsRequest`,
    answered with a :class:`PredictResponse` (each file is read with
    :func:`~digitrec.read_image` and prepared as ``digitrec predict`` prepares
    it); OpenAPI docs at ``/docs``; the page at ``/``. Inference runs on a worker
    thread; with ``max_batch_images`` above 1, requests that arrive within
    ``batch_window_ms`` of each other are classified in one call. Refusals are
    4xx with a JSON :class:`ErrorResponse`.

    Args:
        model: A :class:`~digitrec.DigitClassifier`, the path of a model file saved
            with :func:`~digitrec.save`, or ``None`` for
            ``digitrec.pretrained("mnist-cnn")``.
        max_upload_bytes: The largest request body; larger ones are answered 413
            before they are read.
        api_key: If given, ``/v1/`` endpoints need it as ``Authorization: Bearer
            KEY`` or ``X-API-Key: KEY`` (otherwise 401); the page, ``/health``
            and ``/docs`` stay open.
        max_pixels: The largest image (width x height), checked from the file's
            header before decoding (decompression bombs are refused).
        max_images: The most images in one request.
        max_batch_images: The most images classified in one call: requests
            arriving together are prepared and classified as one batch (3x the
            throughput of one call per request with 8 clients, measured in
            ``benchmarks/bench_serving.py``); 1 turns batching off.
        batch_window_ms: How long a batch waits for more requests to join it.
        model_process: Read and classify in a child process with its own copy of
            the model, so that HTTP and the model run on two cores instead of
            taking turns on one interpreter lock (measured in
            ``benchmarks/bench_serving.py``). The child starts with the app
            (spawned, so it loads the model from its file: an in-memory model is
            saved to a temporary file first); if it dies, the requests it held are
            answered 503 and the next batch starts a new one.

    Returns:
        A FastAPI (ASGI) app, to run with uvicorn or mount in another app.

    Raises:
        MissingDependencyError: Without the ``serve`` extra.
        InvalidInputError: If a limit is not positive.
        InvalidTypeError: If ``model`` is of another type.

    Example:
        >>> from fastapi.testclient import TestClient
        >>> app = create_app(digitrec.DigitClassifier(seed=0))
        >>> answer = TestClient(app).post("/v1/predict", json={"pixels": [[0] * 28] * 28})
        >>> answer.status_code, len(answer.json()["predictions"][0]["probabilities"])
        (200, 10)
    """
    require("python_multipart")
    limits = {
        name: check_positive_int(value, name)
        for name, value in [
            ("max_upload_bytes", max_upload_bytes),
            ("max_pixels", max_pixels),
            ("max_images", max_images),
            ("max_batch_images", max_batch_images),
        ]
    }
    if not (isinstance(batch_window_ms, (int, float)) and 0 <= batch_window_ms <= 1000):
        raise InvalidInputError(f"batch_window_ms must be from 0 to 1000, got {batch_window_ms!r}")
    if api_key is not None and not (isinstance(api_key, str) and api_key):
        raise InvalidInputError("api_key must be a non-empty string or None")
    check_bool(model_process, "model_process")
    served = _serve(model)
    child: ModelProcess | None = None
    files = None  # the folder of a model object saved for the child to load
    if model_process:
        path, files = model_file_for(model)
        child = ModelProcess(path, torch.get_num_threads())

    def run(images: list[torch.Tensor], prepare: bool | None) -> list[Prediction]:
        return classify(served.model, images, prepare=prepare)

    batcher = MicroBatcher(
        run,
        window=batch_window_ms / 1000,
        max_images=limits["max_batch_images"],
        runner=None if child is None else child.run,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        if child is not None:
            await loop.run_in_executor(None, child.start)  # ready before the first request
        try:
            yield
        finally:
            await batcher.close()
            if child is not None:
                await loop.run_in_executor(None, child.close)
            if files is not None:
                files.cleanup()

    async def check_key(request: Request) -> None:
        if api_key is not None and not key_matches(request.headers, api_key):
            raise HTTPException(
                401,
                "this endpoint needs the API key: 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    app = FastAPI(
        title="digitrec",
        description="Label images with a digitrec model. Errors: {'error': {'type', 'message'}}.",
        version=versions()["digitrec"],
        lifespan=lifespan,
    )
    app.state.model_process = child  # the child process, if any (its pid: child.pid)
    app.add_middleware(BodySizeLimit, max_bytes=limits["max_upload_bytes"])
    _add_error_handlers(app)

    @app.get("/health", response_model=HealthResponse, tags=["service"])
    async def health() -> HealthResponse:
        """Answer ``{"status": "ok"}`` while the server runs."""
        return HealthResponse(status="ok")

    @app.get(
        "/v1/model",
        response_model=ModelInfo,
        responses=_ERRORS,
        tags=["model"],
        dependencies=[Depends(check_key)],
    )
    async def model_info() -> ModelInfo:
        """Describe the served model: config, class names, versions, its file's header."""
        return served.info

    @app.post(
        "/v1/predict",
        response_model=PredictResponse,
        responses=_ERRORS,
        tags=["model"],
        dependencies=[Depends(check_key)],
        openapi_extra={"requestBody": _PREDICT_BODY},
    )
    async def predict(request: Request) -> Response:
        """Label image files (multipart field ``file``) or JSON pixels; one answer per image."""
        with batcher.arriving():
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            load: Callable[[], list[torch.Tensor]]
            prepare: bool | None
            if content_type == "multipart/form-data":
                blobs, names = await _uploaded(request, limits["max_images"])
                load = partial(read_files, blobs, names, limits["max_pixels"])
                count = len(blobs)
                prepare = True  # files are raw by nature, as for `digitrec predict`
            elif content_type == "application/json":
                pixels = PixelsRequest.model_validate_json(await request.body())
                load = partial(pixel_images, pixels, limits["max_images"], limits["max_pixels"])
                count = pixel_count(pixels)
                prepare = None
            else:
                raise HTTPException(
                    415, f"send multipart/form-data or application/json, not {content_type!r}"
                )
        return _answer(await batcher.classify(load, count, prepare))

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(
            _STATIC / "index.html", headers={"Content-Security-Policy": _PAGE_SECURITY}
        )

    app.mount("/static", StaticFiles(directory=_STATIC), name="static")
    return app

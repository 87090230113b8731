"""Serve a model over HTTP: :func:`create_app` builds an ASGI app with an API and a page.

The app (FastAPI, the optional ``serve`` extra: ``pip install "digitrec[serve]"``)
answers ``GET /health``, ``GET /v1/model`` (what the model records) and
``POST /v1/predict`` (image files, or pixels as JSON, labelled through
:func:`~digitrec.classify`, so an upload takes the same road as ``digitrec
predict``), with OpenAPI docs at ``/docs`` and, at ``/``, a page to draw a digit
or upload a photo and see the answer live. It is built by a function, never at
import time, so it can be mounted in an existing service; ``digitrec serve``
runs it with uvicorn on 127.0.0.1. Every refusal is a 4xx with a JSON body
``{"error": {"type": ..., "message": ...}}``; :doc:`/serving` lists the limits.
"""

from __future__ import annotations

from .app import create_app
from .schemas import (
    ErrorDetail,
    ErrorResponse,
    HealthResponse,
    ModelInfo,
    PixelsRequest,
    PredictionResponse,
    PredictResponse,
)

__all__ = [
    "ErrorDetail",
    "ErrorResponse",
    "HealthResponse",
    "ModelInfo",
    "PixelsRequest",
    "PredictResponse",
    "PredictionResponse",
    "create_app",
]

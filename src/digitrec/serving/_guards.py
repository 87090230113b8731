"""What guards the app before a request reaches a route: the body-size limit and the API key."""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_BEARER = "bearer "


def error_body(kind: str, message: str) -> bytes:
    """The JSON body of every refusal."""
    return json.dumps({"error": {"type": kind, "message": message}}).encode()


async def send_error(send: Send, status: int, kind: str, message: str) -> None:
    """Answer with a JSON error, from plain ASGI (before any route runs)."""
    body = error_body(kind, message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _BodyTooLargeError(Exception):
    pass


class BodySizeLimit:
    """Refuse a request body over ``max_bytes`` with 413, before reading it all.

    A ``Content-Length`` over the limit is refused at once, unread; a body sent
    without one (chunked) is counted as it streams in and refused the moment it
    passes the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _message(self) -> str:
        return f"the request body is over the limit of {self.max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await send_error(send, 413, "RequestTooLarge", self._message())
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLargeError:
            if not started:
                await send_error(send, 413, "RequestTooLarge", self._message())


def key_matches(headers: Any, api_key: str) -> bool:
    """Whether ``Authorization: Bearer KEY`` or ``X-API-Key: KEY`` carries ``api_key``."""
    given = headers.get("x-api-key")
    authorization = headers.get("authorization", "")
    if given is None and authorization.lower().startswith(_BEARER):
        given = authorization[len(_BEARER) :].strip()
    return given is not None and hmac.compare_digest(given.encode(), api_key.encode())

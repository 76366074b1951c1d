"""Request bodies are bounded and strict JSON before any route sees them.

``BodyGuard`` is a plain ASGI middleware: a body over ``max_bytes`` (announced by
``Content-Length`` or found while reading) is answered 413 without reading the rest; any non-empty
body that is not UTF-8 JSON, or carries ``NaN``/``Infinity`` literals (which Python's json module
accepts but JSON forbids), or nests deeper than the parser copes with, is answered 422 with a
message. Everything else is passed on with the body replayed unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

EXCERPT_CHARS = 80  # the most of a client's input any error message repeats


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """A bounded, JSON-safe rendering of client input for error messages."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


def check_json(body: bytes) -> str | None:
    """None when ``body`` is strict UTF-8 JSON, else what is wrong with it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    try:
        json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        return "the body nests too deeply"
    except ValueError as exc:
        return f"the body is not valid JSON: {excerpt(str(exc), 200)}"
    return None


class BodyGuard:
    """ASGI middleware: 413 for bodies over ``max_bytes``, 422 for malformed JSON bodies."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body:
            problem = check_json(body)
            if problem is not None:
                await JSONResponse({"detail": problem}, status_code=422)(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request body larger than {self.max_bytes} bytes"
        # Connection: close, so that the client does not have to send the rest first
        response = JSONResponse(
            {"detail": detail}, status_code=413, headers={"Connection": "close"}
        )
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None

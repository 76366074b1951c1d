"""A lean ASGI path for the ordinary poll, ``GET /v1/alerts/changes?cursor=N&limit=M``.

Maintenance systems poll this route in a loop, so its per-request overhead sets what one core
can serve. FastAPI's routing, dependency solving and exception middlewares cost about as much CPU
as the query itself (profiled with py-spy). This middleware answers only the plain, valid case —
a GET with at most the two integer parameters in range, one ``X-API-Key`` already verified in the
key cache, a role allowed by ``ROUTE_ROLES``, a token from the rate limiter — with the same body
and headers as the route (the JSON is built by PostgreSQL either way), and a database outage as
the route's 503. Anything else (a missing, unknown or uncached key, a wrong role, the rate limit,
any other parameter or value) falls through untouched to the FastAPI route, which stays the one
definition of the endpoint's validation, errors and OpenAPI schema.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api import errors
from api.auth import ROUTE_ROLES, api_routes
from forewarn.storage import alerts as store

log = logging.getLogger(__name__)
PATH = "/v1/alerts/changes"
ROLES = ROUTE_ROLES[("GET", PATH)]
# Bounds of the route's Query(...) declarations in api/routes/alerts.py.
CURSOR_MAX = 2**62
LIMIT_MIN, LIMIT_MAX, LIMIT_DEFAULT = 1, 1000, 100
MAX_DIGITS = 19  # 2**62 has 19 digits; longer strings go to the route's validation


def _int(raw: bytes) -> int | None:
    if not raw or len(raw) > MAX_DIGITS or not raw.isdigit():
        return None
    return int(raw)


def parse_query(qs: bytes) -> tuple[int, int] | None:
    """(cursor, limit) for a query string of plain in-range integers; None for anything else."""
    cursor, limit = 0, LIMIT_DEFAULT
    seen: set[bytes] = set()
    if qs:
        for part in qs.split(b"&"):
            name, eq, raw = part.partition(b"=")
            if not eq or name in seen:
                return None
            seen.add(name)
            value = _int(raw)
            if value is None:
                return None
            if name == b"cursor" and value <= CURSOR_MAX:
                cursor = value
            elif name == b"limit" and LIMIT_MIN <= value <= LIMIT_MAX:
                limit = value
            else:
                return None
    return cursor, limit


def _api_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    found: bytes | None = None
    for name, value in headers:
        if name == b"x-api-key":
            if found is not None:
                return None
            found = value
    return found.decode("latin-1") if found else None


class PollFastPath:
    """ASGI middleware: serve the plain poll directly, pass everything else to ``app``."""

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state  # the FastAPI app's state: keys, limiter, read_pool
        self.route: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        response = await self._answer(scope)
        if response is None:
            await self.app(scope, receive, send)
            return
        if self.route is None:
            self.route = next(r for r in api_routes(scope["app"].routes) if r.path == PATH)
        scope["route"] = self.route  # the metrics middleware labels requests by route
        await response(scope, receive, send)

    async def _answer(self, scope: Scope) -> Response | None:
        """The response, or None when the FastAPI route must handle the request."""
        state = self.state
        pool = getattr(state, "read_pool", None)
        params = parse_query(scope["query_string"])
        supplied = _api_key(scope["headers"])
        if pool is None or params is None or supplied is None:
            return None
        now = time.monotonic()
        key = state.keys.cached(supplied, now)
        if key is None or key.role not in ROLES:
            return None
        if state.limiter.take(key.id, now) > 0:
            return None  # the route answers 429 with Retry-After
        try:
            async with pool.connection() as conn:
                text = await store.alert_changes_json_async(conn, *params)
        except (PoolTimeout, psycopg.OperationalError) as exc:
            # as api/errors.py maps them for the route; anything else propagates (a 500) as there
            log.warning("database unavailable on %s: %s", PATH, exc)
            return errors.unavailable()
        return Response(text, media_type="application/json")

"""The one place where exceptions become HTTP responses.

NotFound -> 404, Conflict -> 409, ContractError/InputError/invalid values -> 422, StorageUnavailable (and a
database that cannot be reached, is read-only, or a pool with no free connection) -> 503 with Retry-After.
No response repeats more than a bounded excerpt of the client's input (``api.guard.excerpt``), and
every error body is plain JSON whatever the input held (a NaN echoed back used to make it a 500).
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.guard import excerpt
from forewarn.errors import (
    Conflict,
    ContractError,
    ForewarnError,
    InputError,
    NotFound,
    StorageUnavailable,
)

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5


DETAIL_CHARS = 500  # the longest error message sent back
MAX_ERRORS = 20  # validation errors listed per response


def _json(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"detail": excerpt(detail, DETAIL_CHARS)}, status_code=status, headers=headers
    )


def _validation_error(err: dict[str, Any]) -> dict[str, Any]:
    """One pydantic error with the offending input cut to an excerpt (and made JSON-safe)."""
    out: dict[str, Any] = {
        "type": str(err.get("type", "")),
        "loc": [p if isinstance(p, int) else excerpt(str(p)) for p in err.get("loc", ())][:10],
        "msg": excerpt(str(err.get("msg", "")), DETAIL_CHARS),
    }
    if "input" in err:
        out["input"] = excerpt(err["input"])
    return out


def unavailable(detail: str = "database unavailable; retry later") -> JSONResponse:
    return _json(503, detail, {"Retry-After": str(RETRY_AFTER_S)})


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""

    async def forewarn_error(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, NotFound):
            return _json(404, str(exc))
        if isinstance(exc, Conflict):
            return _json(409, str(exc))
        if isinstance(exc, ContractError | InputError):
            return _json(422, str(exc))
        if isinstance(exc, StorageUnavailable):
            return unavailable()
        log.error("unmapped %s on %s: %s", type(exc).__name__, request.url.path, exc)
        return _json(400, str(exc))

    async def db_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable on %s: %s", request.url.path, exc)
        return unavailable()

    async def db_value(request: Request, exc: Exception) -> JSONResponse:
        # a value PostgreSQL refuses (e.g. a date out of its range) is the client's error
        return _json(422, f"invalid value: {str(exc).splitlines()[0]}")

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        detail = [_validation_error(e) for e in errors[:MAX_ERRORS]]
        return JSONResponse({"detail": detail, "errors": len(errors)}, status_code=422)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return _json(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(ForewarnError, forewarn_error)
    app.add_exception_handler(PoolTimeout, db_down)
    app.add_exception_handler(psycopg.OperationalError, db_down)
    # A read-only database (a replica promoted late, a full disk, maintenance) refuses writes for
    # a while: the client should retry, exactly as when it is unreachable.
    app.add_exception_handler(psycopg.errors.ReadOnlySqlTransaction, db_down)
    app.add_exception_handler(psycopg.DataError, db_value)

"""The one place where exceptions become HTTP responses.

NotFound -> 404, Conflict -> 409, ContractError/invalid values -> 422, StorageUnavailable (and a
database that cannot be reached, is read-only, or a pool with no free connection) -> 503 with Retry-After.
"""

from __future__ import annotations

import logging

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout

from forewarn.errors import Conflict, ContractError, ForewarnError, NotFound, StorageUnavailable

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5


def _json(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def unavailable(detail: str = "database unavailable; retry later") -> JSONResponse:
    return _json(503, detail, {"Retry-After": str(RETRY_AFTER_S)})


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""

    async def forewarn_error(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, NotFound):
            return _json(404, str(exc))
        if isinstance(exc, Conflict):
            return _json(409, str(exc))
        if isinstance(exc, ContractError):
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

    app.add_exception_handler(ForewarnError, forewarn_error)
    app.add_exception_handler(PoolTimeout, db_down)
    app.add_exception_handler(psycopg.OperationalError, db_down)
    # A read-only database (a replica promoted late, a full disk, maintenance) refuses writes for
    # a while: the client should retry, exactly as when it is unreachable.
    app.add_exception_handler(psycopg.errors.ReadOnlySqlTransaction, db_down)
    app.add_exception_handler(psycopg.DataError, db_value)

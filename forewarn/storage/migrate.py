"""Numbered SQL migrations, applied once each, in order, under an advisory lock."""

from __future__ import annotations

import logging
from importlib import resources

import psycopg

from forewarn.storage.rollup_schema import prepare_rollups
from forewarn.storage.timescale import enable_hypertables

log = logging.getLogger(__name__)

# Time-series tables and their chunk interval when the server has TimescaleDB.
HYPERTABLES = {"readings": "1 day", "machine_events": "7 days", "predictions": "1 day"}

# Arbitrary constant: every Forewarn process that migrates takes the same transaction-level lock,
# so two services starting at once apply each migration exactly once.
MIGRATION_LOCK_ID = 0x466F7265  # "Fore"


def available_migrations() -> list[tuple[str, str]]:
    """(name, sql) of every shipped migration, sorted by its number prefix."""
    folder = resources.files("forewarn") / "migrations"
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(p.name, p.read_text(encoding="utf-8")) for p in files]


def applied_migrations(conn: psycopg.Connection) -> list[str]:
    """Names of the migrations already recorded in schema_migrations (empty on a new database)."""
    exists = conn.execute("select to_regclass('schema_migrations')").fetchone()
    if not exists or exists[0] is None:
        return []
    return [r[0] for r in conn.execute("select name from schema_migrations order by name")]


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply pending migrations in one transaction; return the names applied now."""
    applied_now: list[str] = []
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
        conn.execute(
            "create table if not exists schema_migrations ("
            " name text primary key, applied_at timestamptz not null default now())"
        )
        done = set(applied_migrations(conn))
        for name, sql in available_migrations():
            if name in done:
                continue
            log.info("applying migration %s", name)
            conn.execute(sql.encode())  # bytes: run as one multi-statement script
            conn.execute("insert into schema_migrations (name) values (%s)", (name,))
            applied_now.append(name)
        # Detected here, never a setting: the same tables become hypertables when TimescaleDB exists.
        enable_hypertables(conn, HYPERTABLES)
        # Roll-up hypertables; a continuous aggregate for hours with the community licence.
        prepare_rollups(conn)
    return applied_now

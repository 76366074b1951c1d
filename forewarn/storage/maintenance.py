"""The application's own scheduler work: refresh the roll-ups and apply retention.

:func:`run_maintenance` is what a long-running service calls every minute or so (or runs
:func:`maintenance_loop` in a thread). Retention keeps raw readings and minute roll-ups for
``settings.db.retention_days`` (counted from ``now``, or from the newest reading when that is
older) and hour roll-ups for ``settings.db.hour_rollup_retention_days`` (365 by default), so
long trends outlive the raw data. On TimescaleDB whole chunks go with ``drop_chunks``; rows older
than the cutoff in a chunk that straddles it (and everything on plain PostgreSQL) are deleted in
batches of :data:`DELETE_BATCH` rows by primary key, each batch its own transaction. Either way
exactly the rows older than the cutoff are removed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from forewarn.errors import ForewarnError
from forewarn.settings import Settings
from forewarn.storage.dead_letters import prune_dead_letters
from forewarn.storage.readings import latest_reading_time
from forewarn.storage.rollups import GRACE, refresh_rollups
from forewarn.storage.timescale import timescale_schema

log = logging.getLogger(__name__)

DELETE_BATCH = 10_000
# table -> primary key columns (the batched DELETE addresses rows by key: on a hypertable a ctid
# is only unique within one chunk).
RETAINED = {
    "readings": ("machine_id", "seq", "ts"),
    "readings_1m": ("machine_id", "ts", "sensor"),
    "readings_1h": ("machine_id", "ts", "sensor"),
}


def retention_cutoffs(settings: Settings, now: datetime) -> dict[str, datetime]:
    """Per table, the time before which rows are dropped."""
    raw = now - timedelta(days=settings.db.retention_days)
    keep_h = max(settings.db.retention_days, settings.db.hour_rollup_retention_days)
    hours = now - timedelta(days=keep_h)
    return {"readings": raw, "readings_1m": raw, "readings_1h": hours}


def _is_hypertable(conn: psycopg.Connection, table: str) -> bool:
    row = conn.execute(
        "select exists (select 1 from timescaledb_information.hypertables"
        " where format('%%I.%%I', hypertable_schema, hypertable_name)::regclass = %s::regclass)"
        " or exists (select 1 from timescaledb_information.continuous_aggregates"
        " where format('%%I.%%I', view_schema, view_name)::regclass = %s::regclass)",
        (table, table),
    ).fetchone()
    return bool(row and row[0])


def _drop_chunks(conn: psycopg.Connection, schema: str, table: str, cutoff: datetime) -> int:
    with conn.transaction():
        if not _is_hypertable(conn, table):
            return 0
        rows = conn.execute(
            sql.SQL("select {}.drop_chunks(%s::regclass, older_than => %s::timestamptz)").format(
                sql.Identifier(schema)
            ),
            (table, cutoff),
        ).fetchall()
    return len(rows)


def _delete_batches(conn: psycopg.Connection, table: str, cutoff: datetime) -> int:
    key = sql.SQL(", ").join(map(sql.Identifier, RETAINED[table]))
    statement = sql.SQL(
        "delete from {t} where ts < %(cutoff)s and ({key}) in"
        " (select {key} from {t} where ts < %(cutoff)s limit %(batch)s)"
    ).format(t=sql.Identifier(table), key=key)
    deleted = 0
    while True:
        with conn.transaction():
            kind = conn.execute(
                "select relkind from pg_class where oid = to_regclass(%s)", (table,)
            ).fetchone()
            if kind is None or kind[0] != "r":
                return deleted  # absent, or a continuous aggregate (chunks only)
            n = conn.execute(statement, {"cutoff": cutoff, "batch": DELETE_BATCH}).rowcount
        deleted += n
        if n < DELETE_BATCH:
            return deleted


def apply_retention(conn: psycopg.Connection, cutoffs: dict[str, datetime]) -> dict[str, int]:
    """Remove rows older than each table's cutoff; return chunks dropped and rows deleted."""
    with conn.transaction():
        schema = timescale_schema(conn)
    result: dict[str, int] = {}
    for table, cutoff in cutoffs.items():
        if table not in RETAINED:
            raise ValueError(f"no retention for table {table!r}")
        counted = _older_rows(conn, table, cutoff) if table == "readings" else None
        if schema is not None:
            result[f"{table}_chunks_dropped"] = _drop_chunks(conn, schema, table, cutoff)
        result[f"{table}_rows_deleted"] = _delete_batches(conn, table, cutoff)
        if counted:
            with conn.transaction():
                conn.execute(
                    "insert into retention_log (table_name, cutoff, rows_removed)"
                    " values (%s, %s, %s)",
                    (table, cutoff, counted),
                )
    return result


def _older_rows(conn: psycopg.Connection, table: str, cutoff: datetime) -> int:
    """Rows about to be removed (counted first: a dropped chunk reports no row count)."""
    with conn.transaction():
        row = conn.execute(
            sql.SQL("select count(*) from {} where ts < %s").format(sql.Identifier(table)),
            (cutoff,),
        ).fetchone()
    return 0 if row is None else int(row[0])


def readings_removed(conn: psycopg.Connection) -> int:
    """Readings retention has removed so far (from retention_log)."""
    row = conn.execute(
        "select coalesce(sum(rows_removed), 0) from retention_log where table_name = 'readings'"
    ).fetchone()
    return 0 if row is None else int(row[0])


def run_maintenance(
    conn: psycopg.Connection, settings: Settings, now: datetime, *, grace: timedelta = GRACE
) -> dict[str, int]:
    """One scheduler tick: refresh the roll-ups up to ``now``, then apply retention.

    Retention counts from the newest reading when that is older than ``now``, so a replay of past
    data (the simulator's clock) keeps its last ``retention_days`` instead of losing everything.
    """
    refreshed = refresh_rollups(conn, now, grace=grace)
    with conn.transaction():
        newest = latest_reading_time(conn, until=now)
    reference = now if newest is None else min(now, newest)
    result = apply_retention(conn, retention_cutoffs(settings, reference))
    # dead letters age by the wall clock (their received_at), not by the plant's data
    with conn.transaction():
        result["dead_letters_pruned"] = prune_dead_letters(
            conn, now - timedelta(days=settings.db.dead_letter_retention_days)
        )
    result["rollup_minutes_refreshed"] = (
        0 if refreshed is None else int((refreshed.end - refreshed.start) / timedelta(minutes=1))
    )
    result["rollup_late_ranges"] = 0 if refreshed is None else len(refreshed.late_ranges)
    log.info("maintenance at %s: %s", now.isoformat(), result)
    return result


def maintenance_loop(
    connect: Callable[[], psycopg.Connection],
    settings: Settings,
    stop: threading.Event,
    *,
    interval_s: float = 60.0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Call :func:`run_maintenance` every ``interval_s`` until ``stop`` is set.

    A failed tick is logged and retried on the next one with a new connection; it never ends
    the loop. ``connect`` returns a new connection (e.g. ``lambda: storage.db.connect(url)``).
    """
    while not stop.is_set():
        try:
            with connect() as conn:
                run_maintenance(conn, settings, clock())
        except (ForewarnError, psycopg.Error):
            log.exception("maintenance tick failed; retrying in %.0f s", interval_s)
        stop.wait(interval_s)

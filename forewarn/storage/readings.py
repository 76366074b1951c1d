"""Bulk, idempotent writes of telemetry, events and dead letters (COPY through a staging table)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from psycopg import Connection
from psycopg.types.json import Jsonb

from forewarn.contract import Event, Telemetry

_READINGS_STAGE = (
    "create temp table if not exists readings_stage"
    " (machine_id text, seq bigint, ts timestamptz, regime integer, values jsonb)"
    " on commit delete rows"
)
_EVENTS_STAGE = (
    "create temp table if not exists events_stage (machine_id text, seq bigint, ts timestamptz,"
    " event text, mode text, kind text, duration_s double precision, detail jsonb)"
    " on commit delete rows"
)


def insert_readings(conn: Connection, rows: Sequence[Telemetry]) -> int:
    """COPY telemetry into readings; a row whose (machine, seq, ts) exists is skipped. Returns rows stored.

    Rows left in the staging table by an earlier call in the same transaction only conflict again.
    Runs inside the caller's transaction: the caller commits (and only then acknowledges).
    """
    if not rows:
        return 0
    conn.execute(_READINGS_STAGE)
    with conn.cursor() as cur:
        with cur.copy(
            "copy readings_stage (machine_id, seq, ts, regime, values) from stdin"
        ) as copy:
            for t in rows:
                copy.write_row((t.machine, t.seq, t.ts, t.regime, Jsonb(t.values)))
        cur.execute(
            "insert into readings (machine_id, seq, ts, regime, values)"
            " select distinct on (machine_id, seq, ts) machine_id, seq, ts, regime, values"
            " from readings_stage on conflict do nothing"
        )
        stored = cur.rowcount
    return stored


def insert_events(conn: Connection, rows: Sequence[Event]) -> int:
    """COPY machine events, skipping any already stored. Returns rows stored."""
    if not rows:
        return 0
    conn.execute(_EVENTS_STAGE)
    with conn.cursor() as cur:
        with cur.copy(
            "copy events_stage (machine_id, seq, ts, event, mode, kind, duration_s, detail) from stdin"
        ) as copy:
            for e in rows:
                copy.write_row(
                    (
                        e.machine,
                        e.seq,
                        e.ts,
                        e.event,
                        e.mode,
                        e.kind,
                        e.duration_s,
                        Jsonb(e.detail | ({"state": e.state} if e.state else {})),
                    )
                )
        cur.execute(
            "insert into machine_events (machine_id, seq, ts, event, mode, kind, duration_s, detail)"
            " select distinct on (machine_id, seq, ts) * from events_stage on conflict do nothing"
        )
        stored = cur.rowcount
    return stored


def insert_dead_letters(conn: Connection, rows: Iterable[tuple[str, bytes, str, str]]) -> int:
    """Store rejected messages as (topic, raw payload, reason code, detail). Returns rows stored."""
    n = 0
    with (
        conn.cursor() as cur,
        cur.copy("copy dead_letters (topic, payload, reason, detail) from stdin") as copy,
    ):
        for topic, payload, reason, detail in rows:
            copy.write_row((topic, payload, reason, detail))
            n += 1
    return n


def latest_reading_time(conn: Connection) -> datetime | None:
    """The newest reading's event time (None on an empty plant)."""
    row = conn.execute("select max(ts) from readings").fetchone()
    return None if row is None else row[0]

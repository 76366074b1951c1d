"""Bulk, idempotent writes of telemetry, events and dead letters (COPY through a staging table)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import orjson
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


EncodedReading = tuple[str, int, datetime | str, int | None, str]
"""(machine_id, seq, ts (or its ISO text), regime, values as JSON text): ready for COPY."""


def _stage_readings(conn: Connection, rows: Iterable[EncodedReading] | bytes) -> None:
    """COPY rows (tuples, or COPY text-format bytes) into the session's staging table."""
    conn.execute(_READINGS_STAGE)
    with (
        conn.cursor() as cur,
        cur.copy("copy readings_stage (machine_id, seq, ts, regime, values) from stdin") as copy,
    ):
        if isinstance(rows, bytes):
            copy.write(rows)
        else:
            for row in rows:
                copy.write_row(row)


def insert_readings(conn: Connection, rows: Sequence[Telemetry]) -> int:
    """COPY telemetry into readings; a row whose (machine, seq, ts) exists is skipped. Returns rows stored.

    Rows left in the staging table by an earlier call in the same transaction only conflict again.
    Runs inside the caller's transaction: the caller commits (and only then acknowledges).
    """
    if not rows:
        return 0
    dumps = orjson.dumps
    _stage_readings(
        conn, ((t.machine, t.seq, t.ts, t.regime, dumps(t.values).decode()) for t in rows)
    )
    with conn.cursor() as cur:
        cur.execute(
            "insert into readings (machine_id, seq, ts, regime, values)"
            " select distinct on (machine_id, seq, ts) machine_id, seq, ts, regime, values"
            " from readings_stage on conflict do nothing"
        )
        stored = cur.rowcount
    return stored


def readings_overlap(conn: Connection, spans: Sequence[tuple[str, datetime, datetime]]) -> bool:
    """Whether any machine has a reading inside its ``(machine, first, last)`` span (an import
    checks before it COPies a batch straight into the table)."""
    row = conn.execute(
        "select exists (select 1 from unnest(%s::text[], %s::timestamptz[], %s::timestamptz[])"
        " as b(machine_id, lo, hi) join readings r on r.machine_id = b.machine_id"
        " and r.ts >= b.lo and r.ts <= b.hi)",
        ([m for m, _, _ in spans], [lo for _, lo, _ in spans], [hi for _, _, hi in spans]),
    ).fetchone()
    return bool(row and row[0])


def copy_new_readings(conn: Connection, payload: bytes) -> int:
    """COPY text-format readings straight into the table, for a batch known to be new.

    A key that exists after all (a concurrent writer) raises ``psycopg.errors.UniqueViolation``:
    the caller rolls back to a savepoint and uses :func:`merge_readings`. Returns rows stored.
    """
    with (
        conn.cursor() as cur,
        cur.copy("copy readings (machine_id, seq, ts, regime, values) from stdin") as copy,
    ):
        copy.write(payload)
    return payload.count(b"\n")


def merge_readings(
    conn: Connection, rows: Iterable[EncodedReading] | bytes
) -> list[tuple[str, int]]:
    """COPY readings; values of an existing (machine, seq, ts) are merged in (history import).

    A reading whose stored values already contain every new value is left alone (a re-import
    stores nothing twice); otherwise the new values are added, replacing the same sensors'.
    The caller gives each (machine, seq, ts) at most once per call. Returns the (machine, seq)
    of the readings written or changed. Runs inside the caller's transaction.
    """
    conn.execute(_READINGS_STAGE)
    conn.execute("truncate readings_stage")  # rows an earlier insert_readings left
    _stage_readings(conn, rows)
    with conn.cursor() as cur:
        cur.execute(
            "insert into readings as r (machine_id, seq, ts, regime, values)"
            " select machine_id, seq, ts, regime, values from readings_stage"
            " on conflict (machine_id, seq, ts) do update"
            " set values = r.values || excluded.values,"
            " regime = coalesce(excluded.regime, r.regime), received_at = now()"
            " where not r.values @> excluded.values"
            " returning machine_id, seq"
        )
        changed = [(str(m), int(q)) for m, q in cur.fetchall()]
        cur.execute("truncate readings_stage")
    return changed


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


def count_readings(conn: Connection) -> int:
    """Readings stored (all machines)."""
    row = conn.execute("select count(*) from readings").fetchone()
    return int(row[0]) if row else 0


def latest_reading_time(conn: Connection) -> datetime | None:
    """The newest reading's event time (None on an empty plant)."""
    row = conn.execute("select max(ts) from readings").fetchone()
    return None if row is None else row[0]

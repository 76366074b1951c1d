"""Bulk, idempotent writes of telemetry, events and dead letters (COPY through a staging table)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from psycopg import Connection, sql
from psycopg.types.json import Jsonb

from forewarn.assets import Periods, bounded
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

    The one readings writer (ingest, importers, simulated histories). Rows left in the staging
    table by an earlier call in the same transaction only conflict again. Runs inside the caller's
    transaction: the caller commits (and only then acknowledges). The values dict is serialised
    once by orjson (the hot spot of ingest's writer) instead of per row by the generic JSON adapter.
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


DEAD_LETTER_EXCERPT_BYTES = 64 * 1024  # default of FOREWARN_INGEST__DEAD_LETTER_EXCERPT_BYTES
_TEXT_MAX = 2000  # characters of a topic or detail kept


def insert_dead_letters(
    conn: Connection,
    rows: Iterable[tuple[str, bytes, str, str]],
    *,
    excerpt_bytes: int = DEAD_LETTER_EXCERPT_BYTES,
) -> int:
    """Store rejected messages as (topic, raw payload, reason code, detail). Returns rows stored.

    Only the first ``excerpt_bytes`` of a payload are kept, with the whole payload's size and
    sha256: a flood of huge bad messages cannot fill the database.
    """
    n = 0
    with (
        conn.cursor() as cur,
        cur.copy(
            "copy dead_letters (topic, payload, reason, detail, size_bytes, sha256) from stdin"
        ) as copy,
    ):
        for topic, payload, reason, detail in rows:
            digest = hashlib.sha256(payload).hexdigest()
            copy.write_row(
                (
                    topic[:_TEXT_MAX],
                    payload[:excerpt_bytes],
                    reason,
                    detail[:_TEXT_MAX],
                    len(payload),
                    digest,
                )
            )
            n += 1
    return n


def count_readings(conn: Connection) -> int:
    """Readings stored (all machines)."""
    row = conn.execute("select count(*) from readings").fetchone()
    return int(row[0]) if row else 0


def latest_reading_time(conn: Connection, until: datetime | None = None) -> datetime | None:
    """The newest reading's event time, at or before ``until`` if given (None on an empty plant)."""
    if until is None:
        row = conn.execute("select max(ts) from readings").fetchone()
    else:
        row = conn.execute("select max(ts) from readings where ts <= %s", (until,)).fetchone()
    return None if row is None else row[0]


# -- the ingest writer: one reading per (machine, seq) -----------------------------------------
_SEQ_STAGE = (
    "create temp table if not exists seq_stage (idx integer, machine_id text, seq bigint,"
    " ts timestamptz, regime integer, values jsonb, reordered boolean) on commit delete rows"
)
# Rows that are not plainly new: at or below the machine's newest seq. Only those are looked up
# in readings (by (machine, seq): on a hypertable that probes every chunk, so not for every row).
_SEQ_CLASSIFY = """
select s.idx, s.seq, m.max_seq, r.ts is not null as present,
       r.ts is not distinct from s.ts and r.values = s.values
         and r.regime is not distinct from s.regime as same
from seq_stage s
join machine_seq m on m.machine_id = s.machine_id
left join lateral (
    select x.ts, x.values, x.regime from readings x
    where x.machine_id = s.machine_id and x.seq = s.seq
    order by x.ts = s.ts desc limit 1
) r on true
where s.seq <= m.max_seq
"""
_SEQ_INSERT = (
    "insert into readings (machine_id, seq, ts, regime, values, reordered)"
    " select machine_id, seq, ts, regime, values, reordered from seq_stage on conflict do nothing"
)
_SEQ_ADVANCE = (
    "insert into machine_seq as m (machine_id, max_seq)"
    " select machine_id, max(seq) from seq_stage group by machine_id"
    " on conflict (machine_id) do update set max_seq = excluded.max_seq, updated_at = now()"
    " where excluded.max_seq > m.max_seq"
)


@dataclass(frozen=True, slots=True)
class SeqVerdicts:
    """What :func:`write_readings` did with each row it was given (by index)."""

    stored: int
    reordered: int  # stored, below the machine's newest seq, flagged
    duplicates: int  # exact redeliveries: nothing written
    rejected: list[tuple[int, str, str]]  # (index, seq_conflict | stale_seq, detail)


def write_readings(
    conn: Connection,
    rows: Sequence[EncodedReading],
    *,
    reorder_window: int,
    flagged: Sequence[bool] = (),
) -> SeqVerdicts:
    """Store readings with (machine, seq) as their identity, inside the caller's transaction.

    Against what is stored: the same (machine, seq) with the same ts, values and regime is an
    exact redelivery (nothing written); with anything different it is ``seq_conflict``; a seq
    more than ``reorder_window`` below the machine's newest is ``stale_seq``; a lower one within
    the window is stored with ``reordered`` set. ``flagged[i]`` marks row i as reordered already
    (the caller found it out of order within its own batch). The caller gives each (machine, seq)
    at most once. Machines are locked for the transaction, so concurrent writers agree.
    """
    if not rows:
        return SeqVerdicts(0, 0, 0, [])
    machines = sorted({r[0] for r in rows})
    conn.execute(
        "select pg_advisory_xact_lock(hashtextextended(m, 70)) from unnest(%s::text[]) m",
        (machines,),
    )
    conn.execute(_SEQ_STAGE)
    with (
        conn.cursor() as cur,
        cur.copy(
            "copy seq_stage (idx, machine_id, seq, ts, regime, values, reordered) from stdin"
        ) as copy,
    ):
        for i, (machine, seq, ts, regime, values) in enumerate(rows):
            copy.write_row((i, machine, seq, ts, regime, values, bool(flagged and flagged[i])))
    drop: list[int] = []
    late: list[int] = []
    rejected: list[tuple[int, str, str]] = []
    for idx, seq, max_seq, present, same in conn.execute(_SEQ_CLASSIFY).fetchall():
        if present:
            drop.append(idx)
            if not same:
                rejected.append(
                    (idx, "seq_conflict", f"seq {seq} is stored with another ts or other values")
                )
        elif seq < max_seq - reorder_window:
            drop.append(idx)
            rejected.append(
                (idx, "stale_seq", f"seq {seq} is more than {reorder_window} below {max_seq}")
            )
        elif seq < max_seq:
            late.append(idx)
    if drop:
        conn.execute("delete from seq_stage where idx = any(%s)", (drop,))
    if late:
        conn.execute("update seq_stage set reordered = true where idx = any(%s)", (late,))
    with conn.cursor() as cur:
        cur.execute(_SEQ_INSERT)
        stored = cur.rowcount
        cur.execute(_SEQ_ADVANCE)
    marked = set(late).union(i for i, f in enumerate(flagged) if f).difference(drop)
    return SeqVerdicts(stored, len(marked), len(drop) - len(rejected), rejected)


def last_plant_message(conn: Connection) -> tuple[datetime, int] | None:
    """(newest time, highest seq) of what the plant sent: readings and events with seq > 0.

    An alert resolution's own event record has a negative seq. None on an empty plant.
    """
    row = conn.execute(
        "select max(ts), max(seq) from (select ts, seq from readings"
        " union all select ts, seq from machine_events where seq > 0) s"
    ).fetchone()
    return None if row is None or row[0] is None else (row[0], int(row[1]))


def pipeline_counts(conn: Connection) -> dict[str, int]:
    """Rows that show the pipeline working: readings, events, dead letters, predictions, alerts."""
    row = conn.execute(
        # plant events only (seq > 0): an alert resolution's own record is not a message
        "select (select count(*) from readings),"
        " (select count(*) from machine_events where seq > 0),"
        " (select count(*) from dead_letters), (select count(*) from predictions),"
        " (select count(*) from alerts), (select count(distinct machine_id) from predictions)"
    ).fetchone()
    assert row is not None
    keys = ("readings", "events", "dead_letters", "predictions", "alerts", "machines_scored")
    return dict(zip(keys, (int(v) for v in row), strict=True))


def reading_span(conn: Connection) -> tuple[datetime | None, datetime | None]:
    """First and last reading time in the database."""
    row = conn.execute("select min(ts), max(ts) from readings").fetchone()
    return (row[0], row[1]) if row else (None, None)


def hourly_means(
    conn: Connection,
    machine_ids: Sequence[str],
    sensors: Sequence[str],
    start: datetime | None,
    end: datetime | None,
    periods: Periods | None = None,
) -> list[tuple[Any, ...]]:
    """(machine, hour, max regime, one mean per sensor) per machine and hour in ``[start, end)``.

    Computed in SQL (one pass over readings, no JSON decoding in Python). ``periods`` limits the
    machines it names to those times (when they had the type whose sensors these are).
    """
    means = sql.SQL(", ").join(
        sql.SQL("avg((r.values ->> {})::float8) as {}").format(sql.Literal(s), sql.Identifier(s))
        for s in sensors
    )
    within, params = _within(periods)
    query = sql.SQL(
        "select r.machine_id, date_trunc('hour', r.ts) as ts, max(r.regime) as regime, {means}"
        " from readings r where r.machine_id = any(%(ids)s)"
        " and (%(start)s::timestamptz is null or r.ts >= %(start)s)"
        " and (%(end)s::timestamptz is null or r.ts < %(end)s){within}"
        " group by 1, 2 order by 1, 2"
    ).format(means=means, within=within)
    params |= {"ids": list(machine_ids), "start": start, "end": end}
    with conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall()


def sampled_readings(
    conn: Connection,
    machine_ids: Sequence[str],
    sensors: Sequence[str],
    until: datetime,
    every_s: float,
    periods: Periods | None = None,
) -> list[tuple[Any, ...]]:
    """(machine, ts, regime, one value per sensor): one reading per ``every_s`` of each machine
    before ``until`` (within its ``periods`` where given)."""
    cols = sql.SQL(", ").join(
        sql.SQL("(r.values->>{})::float8").format(sql.Literal(s)) for s in sensors
    )
    # a number, not input
    bucket = sql.SQL(f"floor(extract(epoch from r.ts) / {float(every_s)!r})")
    within, params = _within(periods)
    query = sql.SQL(
        "select distinct on (r.machine_id, {bucket}) r.machine_id, r.ts, r.regime, {cols}"
        " from readings r where r.machine_id = any(%(ids)s) and r.ts < %(until)s{within}"
        " order by r.machine_id, {bucket}, r.ts"
    ).format(bucket=bucket, cols=cols, within=within)
    params |= {"ids": list(machine_ids), "until": until}
    return conn.execute(query, params).fetchall()


def _within(periods: Periods | None) -> tuple[sql.Composable, dict[str, Any]]:
    """A filter keeping a machine's readings (alias ``r``) inside its bounded periods; machines
    without one are not filtered. Empty (and the query unchanged) when no period is bounded."""
    spans = bounded(periods or {})
    if not spans:
        return sql.SQL(""), {}
    clause = sql.SQL(
        " and (not (r.machine_id = any(%(p_machines)s)) or exists (select 1 from"
        " unnest(%(p_m)s::text[], %(p_lo)s::timestamptz[], %(p_hi)s::timestamptz[])"
        " as p(m, lo, hi) where p.m = r.machine_id and r.ts >= p.lo"
        " and (p.hi is null or r.ts < p.hi)))"
    )
    return clause, {
        "p_machines": sorted({m for m, _, _ in spans}),
        "p_m": [m for m, _, _ in spans],
        "p_lo": [lo for _, lo, _ in spans],
        "p_hi": [hi for _, _, hi in spans],
    }


def create_readings_twin(conn: Connection, table: str) -> None:
    """An empty table shaped like readings (indexes included), e.g. for a comparison ingester."""
    conn.execute(
        sql.SQL("create table {} (like readings including all)").format(sql.Identifier(table))
    )


def insert_one_reading(
    conn: Connection,
    table: str,
    machine_id: str,
    seq: int,
    ts: Any,
    regime: int | None,
    values: dict[str, Any],
) -> None:
    """One INSERT of one reading into ``table`` (the naive per-message writer benchmarks compare
    against; ingest uses :func:`insert_readings`)."""
    conn.execute(
        sql.SQL(
            "insert into {} (machine_id, seq, ts, regime, values) values (%s, %s, %s, %s, %s)"
        ).format(sql.Identifier(table)),
        (machine_id, seq, ts, regime, Jsonb(values)),
    )


def reading_key_counts(conn: Connection, below_seq: int) -> list[tuple[str, int, int]]:
    """(machine, seq, rows stored) of every reading key with seq below ``below_seq``."""
    rows = conn.execute(
        "select machine_id, seq, count(*) from readings where seq < %s group by 1, 2", (below_seq,)
    ).fetchall()
    return [(m, int(s), int(c)) for m, s, c in rows]


def reading_keys(conn: Connection) -> list[tuple[str, int]]:
    """(machine, seq) of every stored reading, duplicates included."""
    return [(m, int(s)) for m, s in conn.execute("select machine_id, seq from readings")]

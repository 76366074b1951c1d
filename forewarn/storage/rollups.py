"""Minute and hour roll-ups of readings per machine and sensor: refresh them, and one query to read them.

Levels: raw ``readings`` (sensor values in the jsonb ``values``) → ``readings_1m`` → ``readings_1h``;
'day' buckets are summed from hours. Each roll-up row holds n, total, min and max of one sensor's
non-null numbers in its bucket, so avg = total / n and coarser buckets are exact sums of finer ones.

:func:`refresh_rollups` materialises buckets up to a watermark per level (``rollup_watermarks``):
each run recomputes every bucket from ``watermark - grace`` to the newest whole minute of data
from the level below (delete + insert, so a rerun changes nothing and a reading up to ``grace``
late is counted). Readings received since the previous run with an older ts (a backlog, or a
replay of past data) are found by ``received_at`` and their hours recomputed too.
:func:`rebuild_rollups` recomputes any range on demand.

:func:`sensor_rollup` / :func:`fleet_rollup` read the roll-up below its watermark and aggregate the
rest from the level below, so the newest data never waits for a refresh (like a continuous
aggregate with real-time aggregation); late data below the watermark shows after the next refresh.

Per server, one SQL path with small branches: buckets by ``time_bucket`` (qualified with the
extension's schema) on TimescaleDB and by ``date_bin`` elsewhere, with the same origin, so both
give the same buckets. With the TimescaleDB community licence ``readings_1h`` is a continuous
aggregate over ``readings_1m`` (see :mod:`forewarn.storage.rollup_schema`), kept up to date by
TimescaleDB.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import class_row

__all__ = [
    "BUCKETS",
    "GRACE",
    "Bucket",
    "Refreshed",
    "RollupRow",
    "fleet_rollup",
    "floor_to",
    "rebuild_rollups",
    "refresh_rollups",
    "sensor_rollup",
]

log = logging.getLogger(__name__)

Bucket = Literal["minute", "hour", "day"]
BUCKETS: dict[str, timedelta] = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
_WIDTH_SQL = {"minute": "1 minute", "hour": "1 hour", "day": "1 day"}
# time_bucket's default origin for timestamptz; date_bin is given the same one (UTC midnight).
ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)
# How far behind the minute watermark each refresh recomputes. Late readings are mostly found by
# received_at; this window covers the rest (e.g. rows backdated by a bulk load) and costs every
# refresh this much data again, so it stays short.
GRACE = timedelta(minutes=2)
# Late readings are found by received_at (database clock) since the previous refresh's start, less
# this margin for ingest transactions that were still open then.
RECEIVED_OVERLAP = timedelta(minutes=5)
# Largest range materialised in one transaction (a first refresh over months proceeds by days).
MAX_SLICE = timedelta(days=1)
# Serialises refreshes of one database ("Roll"); readers never wait for it.
ROLLUP_LOCK_ID = 0x526F6C6C
_LOW = datetime.min.replace(tzinfo=UTC)
_HIGH = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RollupRow:
    """One sensor of one machine over [bucket, bucket + width): non-null values only."""

    machine_id: str
    sensor: str
    bucket: datetime
    count: int
    avg: float
    min: float
    max: float


@dataclass(frozen=True, slots=True)
class _State:
    schema: str | None  # TimescaleDB's schema, None without the extension
    minute_wm: datetime | None  # minutes before this are in readings_1m
    hour_wm: datetime | None  # hours before this are in readings_1h
    received_wm: datetime | None  # start of the previous refresh (database clock)
    hour_is_aggregate: bool  # readings_1h is a continuous aggregate (community licence)


def floor_to(ts: datetime, width: timedelta) -> datetime:
    """Start of the bucket of ``width`` holding ``ts`` (buckets counted from :data:`ORIGIN`)."""
    return ORIGIN + ((ts - ORIGIN) // width) * width


def _ceil_to(ts: datetime, width: timedelta) -> datetime:
    start = floor_to(ts, width)
    return start if start == ts else start + width


def _state(conn: psycopg.Connection) -> _State:
    row = conn.execute(
        "select (select n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace"
        "         where e.extname = 'timescaledb'),"
        " (select watermark from rollup_watermarks where rollup = 'minute'),"
        " (select watermark from rollup_watermarks where rollup = 'hour'),"
        " (select watermark from rollup_watermarks where rollup = 'received'),"
        " coalesce((select c.relkind = 'v' from pg_class c"
        "           where c.oid = to_regclass('readings_1h')), false)"
    ).fetchone()
    assert row is not None
    return _State(row[0], row[1], row[2], row[3], bool(row[4]))


def _bucket(schema: str | None, width: str, column: str) -> sql.Composable:
    """SQL for the bucket of ``column``: time_bucket on TimescaleDB, date_bin elsewhere."""
    if schema is not None:
        return sql.SQL("{}.time_bucket({}::interval, {})").format(
            sql.Identifier(schema), sql.Literal(width), sql.SQL(column)
        )
    return sql.SQL("date_bin({}::interval, {}, {}::timestamptz)").format(
        sql.Literal(width), sql.SQL(column), sql.Literal(ORIGIN.isoformat())
    )


# --- refresh -----------------------------------------------------------------------------------

_MINUTES = """
insert into readings_1m (machine_id, sensor, ts, n, total, min_value, max_value)
select r.machine_id, v.key, {bucket}, count(*), sum(v.value::float8),
       min(v.value::float8), max(v.value::float8)
  from readings r cross join lateral jsonb_each(r.values) as v(key, value)
 where r.ts >= %(lo)s and r.ts < %(hi)s and jsonb_typeof(v.value) = 'number'
 group by 1, 2, 3
"""
_HOURS = """
insert into readings_1h (machine_id, sensor, ts, n, total, min_value, max_value)
select machine_id, sensor, {bucket}, sum(n), sum(total), min(min_value), max(max_value)
  from readings_1m
 where ts >= %(lo)s and ts < %(hi)s
 group by 1, 2, 3
"""
_ADVANCE = (
    "insert into rollup_watermarks (rollup, watermark, refreshed_at) values (%s, %s, now())"
    " on conflict (rollup) do update"
    " set watermark = greatest(rollup_watermarks.watermark, excluded.watermark),"
    " refreshed_at = excluded.refreshed_at"
)


def _materialise(
    conn: psycopg.Connection, state: _State, lo: datetime, hi: datetime, *, advance: bool
) -> None:
    """Recompute minute buckets in [lo, hi) and the hour buckets they touch, in one transaction."""
    hour = BUCKETS["hour"]
    h_lo, h_hi = floor_to(lo, hour), floor_to(hi, hour)
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (ROLLUP_LOCK_ID,))
        span = {"lo": lo, "hi": hi}
        conn.execute("delete from readings_1m where ts >= %(lo)s and ts < %(hi)s", span)
        conn.execute(
            sql.SQL(_MINUTES).format(bucket=_bucket(state.schema, "1 minute", "r.ts")), span
        )
        if advance:
            conn.execute(_ADVANCE, ("minute", hi))
        if state.hour_is_aggregate or h_lo >= h_hi:
            return  # a continuous aggregate follows readings_1m by itself
        span = {"lo": h_lo, "hi": h_hi}
        conn.execute("delete from readings_1h where ts >= %(lo)s and ts < %(hi)s", span)
        conn.execute(sql.SQL(_HOURS).format(bucket=_bucket(state.schema, "1 hour", "ts")), span)
        if advance:
            conn.execute(_ADVANCE, ("hour", h_hi))


@dataclass(frozen=True, slots=True)
class Refreshed:
    """What one :func:`refresh_rollups` recomputed."""

    start: datetime  # the window [start, end) behind the minute watermark, now materialised
    end: datetime
    late_ranges: tuple[tuple[datetime, datetime], ...]  # older ranges that received readings


def _late_ranges(
    conn: psycopg.Connection, state: _State, received_since: datetime, before: datetime
) -> list[tuple[datetime, datetime]]:
    """Whole hours (merged when adjacent) holding readings received since then, clipped to before."""
    rows = conn.execute(
        sql.SQL(
            "select distinct {} from readings where received_at >= %s and ts < %s order by 1"
        ).format(_bucket(state.schema, "1 hour", "ts")),
        (received_since, before),
    ).fetchall()
    hour = BUCKETS["hour"]
    ranges: list[tuple[datetime, datetime]] = []
    for (h,) in rows:
        if ranges and ranges[-1][1] == h:
            ranges[-1] = (ranges[-1][0], h + hour)
        else:
            ranges.append((h, h + hour))
    return [(a, min(b, before)) for a, b in ranges]


def _materialise_range(
    conn: psycopg.Connection, state: _State, lo: datetime, hi: datetime, *, advance: bool
) -> None:
    while lo < hi:
        step = min(hi, lo + MAX_SLICE)
        _materialise(conn, state, lo, step, advance=advance)
        lo = step


def refresh_rollups(
    conn: psycopg.Connection, now: datetime, *, grace: timedelta = GRACE
) -> Refreshed | None:
    """Materialise the roll-ups up to the last whole minute of data before ``now``.

    Recomputes [minute watermark - grace, new watermark) (the first run: from the oldest reading),
    where the new watermark is the minute of the newest reading, never after ``now``: a replay of
    past data (the simulator's clock) is rolled up as it arrives. Readings received since the
    previous refresh with an older ts (a gateway's backlog) have their hours recomputed too.
    Works in transactions of at most a day, each committed when the connection is not already in
    a transaction (otherwise the caller commits). Idempotent; concurrent runs take turns on a lock.
    Returns None when there are no readings.
    """
    minute = BUCKETS["minute"]
    with conn.transaction():
        state = _state(conn)
        row = conn.execute(
            "select now(), min(ts), max(ts) from readings where ts < %s", (now,)
        ).fetchone()
    assert row is not None
    received_now, oldest, newest = row
    if newest is None:
        return None
    hi = min(floor_to(now, minute), floor_to(newest, minute))
    if state.minute_wm is not None:
        lo = floor_to(state.minute_wm - grace, minute)
        hi = max(hi, state.minute_wm)  # never un-materialise (a clock that went back, retention)
    else:
        lo = min(floor_to(oldest, minute), hi)
    late: list[tuple[datetime, datetime]] = []
    if state.received_wm is not None:
        with conn.transaction():
            late = _late_ranges(conn, state, state.received_wm - RECEIVED_OVERLAP, lo)
        for a, b in late:
            _materialise_range(conn, state, a, b, advance=False)
    _materialise_range(conn, state, lo, hi, advance=True)
    with conn.transaction():
        conn.execute(_ADVANCE, ("received", received_now))
    log.debug("roll-ups refreshed over [%s, %s), late %s", lo, hi, late)
    return Refreshed(lo, hi, tuple(late))


def rebuild_rollups(conn: psycopg.Connection, start: datetime, end: datetime) -> None:
    """Recompute the roll-ups over [start, end) from raw readings (after a backfill of old data).

    Widened to whole hours, and clipped to the minute watermark (queries read what lies after it
    from raw readings); never moves the watermarks. With a continuous aggregate for hours,
    TimescaleDB re-materialises hours older than its refresh policy's window only on a manual
    ``refresh_continuous_aggregate``.
    """
    hour = BUCKETS["hour"]
    with conn.transaction():
        state = _state(conn)
    if state.minute_wm is None:
        return  # nothing materialised yet: everything is read from raw readings
    lo, hi = floor_to(start, hour), min(_ceil_to(end, hour), state.minute_wm)
    _materialise_range(conn, state, lo, hi, advance=False)


# --- query -------------------------------------------------------------------------------------

_QUERY = """
with parts as (
    select machine_id, sensor, ts, n::bigint as n, total, min_value, max_value
      from readings_1h
     where ts >= %(h_lo)s and ts < %(h_hi)s {machines} {sensors}
    union all
    select machine_id, sensor, ts, n, total, min_value, max_value
      from readings_1m
     where ts >= %(m_lo)s and ts < %(m_hi)s {machines} {sensors}
    union all
    select r.machine_id, v.key, r.ts, 1, v.value::float8, v.value::float8, v.value::float8
      from readings r cross join lateral jsonb_each(r.values) as v(key, value)
     where r.ts >= %(r_lo)s and r.ts < %(r_hi)s and jsonb_typeof(v.value) = 'number'
           {raw_machines} {raw_sensors}
)
select machine_id, sensor, {bucket} as bucket, sum(n)::bigint as count,
       sum(total) / sum(n) as avg, min(min_value) as min, max(max_value) as max
  from parts
 group by 1, 2, 3
 order by 1, 2, 3
"""


def _span(lo: datetime, hi: datetime, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[lo, hi) clipped to [start, end); an empty span is (start, start)."""
    a, b = max(lo, start), min(hi, end)
    return (a, b) if a < b else (start, start)


def _rollup(
    conn: psycopg.Connection,
    machine_ids: Sequence[str] | None,
    start: datetime,
    end: datetime,
    bucket: Bucket,
    sensors: Sequence[str] | None,
) -> list[RollupRow]:
    width = BUCKETS.get(bucket)
    if width is None:
        raise ValueError(f"bucket must be one of {sorted(BUCKETS)}, not {bucket!r}")
    if machine_ids is not None and not machine_ids:
        return []
    start, end = floor_to(start, width), _ceil_to(end, width)
    state = _state(conn)
    minute_wm = state.minute_wm or _LOW
    # Hours below their watermark (all of them for a continuous aggregate), minutes up to theirs,
    # raw readings after that. Minute buckets never read hours.
    if bucket == "minute":
        hour_wm = _LOW
    else:
        hour_wm = _HIGH if state.hour_is_aggregate else (state.hour_wm or _LOW)
    h_lo, h_hi = _span(_LOW, hour_wm, start, end)
    m_lo, m_hi = _span(hour_wm if bucket != "minute" else _LOW, minute_wm, start, end)
    if state.hour_is_aggregate and bucket != "minute":
        m_lo, m_hi = start, start  # the aggregate already reads readings_1m up to its end
    r_lo, r_hi = _span(minute_wm, _HIGH, start, end)
    params: dict[str, Any] = {
        "h_lo": h_lo,
        "h_hi": h_hi,
        "m_lo": m_lo,
        "m_hi": m_hi,
        "r_lo": r_lo,
        "r_hi": r_hi,
        "machines": list(machine_ids or []),
        "sensors": list(sensors or []),
    }
    by_machine = sql.SQL("and machine_id = any(%(machines)s)" if machine_ids is not None else "")
    by_sensor = sql.SQL("and sensor = any(%(sensors)s)" if sensors is not None else "")
    query = sql.SQL(_QUERY).format(
        machines=by_machine,
        sensors=by_sensor,
        raw_machines=sql.SQL(
            "and r.machine_id = any(%(machines)s)" if machine_ids is not None else ""
        ),
        raw_sensors=sql.SQL("and v.key = any(%(sensors)s)" if sensors is not None else ""),
        bucket=_bucket(state.schema, _WIDTH_SQL[bucket], "ts"),
    )
    with conn.cursor(row_factory=class_row(RollupRow)) as cur:
        return cur.execute(query, params).fetchall()


def sensor_rollup(
    conn: psycopg.Connection,
    machine_id: str,
    start: datetime,
    end: datetime,
    bucket: Bucket = "hour",
    *,
    sensors: Sequence[str] | None = None,
) -> list[RollupRow]:
    """Per-sensor count/avg/min/max of one machine in each bucket overlapping [start, end).

    Ordered by sensor, then bucket. Buckets are whole (start is rounded down and end up to the
    bucket width, UTC-aligned); a bucket with no value for a sensor has no row.
    """
    return _rollup(conn, [machine_id], start, end, bucket, sensors)


def fleet_rollup(
    conn: psycopg.Connection,
    start: datetime,
    end: datetime,
    bucket: Bucket = "hour",
    *,
    machine_ids: Sequence[str] | None = None,
    sensors: Sequence[str] | None = None,
) -> list[RollupRow]:
    """:func:`sensor_rollup` for many machines (all when ``machine_ids`` is None), ordered by machine."""
    return _rollup(conn, machine_ids, start, end, bucket, sensors)

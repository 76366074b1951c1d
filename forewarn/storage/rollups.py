"""Minute and hour roll-ups of readings per machine and sensor: refresh them, and one query to read them.

Levels: raw ``readings`` (sensor values in the jsonb ``values``) → ``readings_1m`` → ``readings_1h``;
'day' buckets are summed from hours. Each roll-up row holds n, total, min and max of one sensor's
non-null numbers in its bucket, so avg = total / n and coarser buckets are exact sums of finer ones.

:func:`refresh_rollups` materialises buckets up to a watermark per level (``rollup_watermarks``):
each run recomputes every bucket from ``watermark - grace`` to ``now`` from the level below
(delete + insert, so a rerun changes nothing, and a reading that arrives late but within the grace
window is counted). A reading older than that stays in ``readings`` but reaches the roll-ups only
through :func:`rebuild_rollups`.

:func:`sensor_rollup` / :func:`fleet_rollup` read the roll-up below its watermark and aggregate the
rest from the level below, so results never wait for a refresh (like a continuous aggregate with
real-time aggregation).

Per server, one SQL path with small branches: buckets by ``time_bucket`` (qualified with the
extension's schema) on TimescaleDB and by ``date_bin`` elsewhere, with the same origin, so both
give the same buckets. With the TimescaleDB community licence ``readings_1h`` is a continuous
aggregate over ``readings_1m`` (see :func:`prepare_rollups`), which TimescaleDB keeps up to date.
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
# How far behind the minute watermark each refresh recomputes, to count late readings.
GRACE = timedelta(minutes=10)
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
        " coalesce((select c.relkind = 'v' from pg_class c"
        "           where c.oid = to_regclass('readings_1h')), false)"
    ).fetchone()
    assert row is not None
    return _State(row[0], row[1], row[2], bool(row[3]))


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


def refresh_rollups(
    conn: psycopg.Connection, now: datetime, *, grace: timedelta = GRACE
) -> tuple[datetime, datetime] | None:
    """Bring the roll-ups up to the last whole minute before ``now``; return the range recomputed.

    Recomputes from ``minute watermark - grace`` (the first run: from the oldest reading), in
    transactions of at most a day, each committed when the connection is not already inside a
    transaction (otherwise the caller commits). Idempotent; concurrent runs serialise on a lock.
    Returns None when there is nothing to do (no readings yet).
    """
    minute = BUCKETS["minute"]
    with conn.transaction():
        state = _state(conn)
        hi = floor_to(now, minute)
        if state.minute_wm is not None:
            lo = floor_to(state.minute_wm - grace, minute)
            hi = max(hi, state.minute_wm)  # a clock that went back never un-materialises
        else:
            row = conn.execute("select min(ts) from readings where ts < %s", (hi,)).fetchone()
            lo = floor_to(row[0], minute) if row and row[0] is not None else hi
    if lo >= hi:
        return None
    start = lo
    while start < hi:
        end = min(hi, start + MAX_SLICE)
        _materialise(conn, state, start, end, advance=True)
        start = end
    log.debug("roll-ups refreshed over [%s, %s)", lo, hi)
    return lo, hi


def rebuild_rollups(conn: psycopg.Connection, start: datetime, end: datetime) -> None:
    """Recompute the roll-ups over [start, end) from raw readings (after a backfill of old data).

    Widened to whole hours; never moves the watermarks. With a continuous aggregate for hours,
    TimescaleDB re-materialises hours older than its refresh policy's window only on a manual
    ``refresh_continuous_aggregate``.
    """
    hour = BUCKETS["hour"]
    lo, hi = floor_to(start, hour), _ceil_to(end, hour)
    with conn.transaction():
        state = _state(conn)
    while lo < hi:
        step = min(hi, lo + MAX_SLICE)
        _materialise(conn, state, lo, step, advance=False)
        lo = step


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

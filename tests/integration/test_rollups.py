"""Roll-ups on plain PostgreSQL 15, the embedded PostgreSQL 18 and TimescaleDB (PostgreSQL 15).

The reference is computed in Python from the readings written, never by the code under test.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from forewarn.contract import Telemetry
from forewarn.errors import StorageUnavailable
from forewarn.settings import load_settings
from forewarn.storage.maintenance import maintenance_loop, run_maintenance
from forewarn.storage.readings import insert_readings
from forewarn.storage.rollups import (
    BUCKETS,
    GRACE,
    Refreshed,
    RollupRow,
    fleet_rollup,
    floor_to,
    rebuild_rollups,
    refresh_rollups,
    sensor_rollup,
)
from tests.factories import make_telemetry

T0 = datetime(2026, 1, 1, tzinfo=UTC)
START = T0 - timedelta(minutes=90)  # the data crosses a midnight: two day buckets
STEP = timedelta(seconds=37)
N = 300  # about three hours per machine
MACHINES = ("m1", "m2")
END = START + N * STEP

Key = tuple[str, str, datetime]


@pytest.fixture
def conn(any_db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(any_db_url) as c:
        yield c


def _reading(machine: str, i: int, ts: datetime | None = None) -> Telemetry:
    """Deterministic values: c is null every 5th reading, b is missing every 7th."""
    k = MACHINES.index(machine) + 1 if machine in MACHINES else 3
    values: dict[str, float | None] = {"a": float(i % 17) * k, "c": None if i % 5 == 0 else -i / 4}
    if i % 7:
        values["b"] = 100.0 + (i * 13) % 29
    return make_telemetry(machine, seq=i, ts=ts or START + i * STEP, values=values)


def _write(conn: psycopg.Connection, rows: list[Telemetry]) -> list[Telemetry]:
    insert_readings(conn, rows)
    conn.commit()
    return rows


def _expected(
    rows: Iterable[Telemetry], bucket: str, *, before: datetime | None = None
) -> dict[Key, tuple[int, float, float, float]]:
    """count/avg/min/max per (machine, sensor, bucket), buckets before ``before`` only if given."""
    groups: dict[Key, list[float]] = defaultdict(list)
    for t in rows:
        if before is not None and t.ts >= before:
            continue
        for sensor, v in t.values.items():
            if v is not None:
                groups[(t.machine, sensor, floor_to(t.ts, BUCKETS[bucket]))].append(v)
    return {k: (len(v), sum(v) / len(v), min(v), max(v)) for k, v in sorted(groups.items())}


def _actual(rows: list[RollupRow]) -> dict[Key, tuple[int, float, float, float]]:
    return {(r.machine_id, r.sensor, r.bucket): (r.count, r.avg, r.min, r.max) for r in rows}


def _assert_same(actual: list[RollupRow], expected: dict[Key, tuple[int, float, float, float]]):
    got = _actual(actual)
    assert list(got) == list(expected)  # same buckets, in (machine, sensor, bucket) order
    for key, (n, avg, lo, hi) in expected.items():
        assert got[key] == (n, pytest.approx(avg, rel=1e-12), lo, hi), key


def _table(conn: psycopg.Connection, table: str) -> list[tuple[object, ...]]:
    return conn.execute(f"select * from {table} order by machine_id, ts, sensor").fetchall()


def test_rollups_equal_a_direct_aggregate_before_during_and_after_refresh(
    conn: psycopg.Connection,
) -> None:
    rows = _write(conn, [_reading(m, i) for m in MACHINES for i in range(N)])

    # Not refreshed: all from raw readings. Half-way (not on an hour): hours + minutes + raw.
    # Fully refreshed: from the roll-up tables.
    for now in (None, START + timedelta(minutes=100, seconds=30), END + timedelta(hours=2)):
        if now is not None:
            refresh_rollups(conn, now)
            conn.commit()
        for bucket in ("minute", "hour", "day"):
            _assert_same(
                fleet_rollup(conn, START, END, bucket),  # type: ignore[arg-type]
                _expected(rows, bucket),
            )
        _assert_same(
            sensor_rollup(conn, "m2", START, END, "hour"),
            _expected((t for t in rows if t.machine == "m2"), "hour"),
        )

    # Materialised: every hour before the one holding the newest reading (still open).
    hours = {k for k in _expected(rows, "hour") if k[2] < T0 + timedelta(hours=1)}
    assert conn.execute("select count(*) from readings_1h").fetchone() == (len(hours),)


def test_query_rounds_the_range_to_whole_buckets_and_filters(conn: psycopg.Connection) -> None:
    rows = _write(conn, [_reading(m, i) for m in MACHINES for i in range(N)])
    refresh_rollups(conn, START + timedelta(hours=1, minutes=3))
    conn.commit()
    start, end = T0 + timedelta(minutes=20, seconds=5), T0 + timedelta(minutes=80, seconds=1)

    got = sensor_rollup(conn, "m1", start, end, "hour", sensors=["b"])

    inside = [t for t in rows if t.machine == "m1" and T0 <= t.ts < T0 + timedelta(hours=2)]
    expected = {k: v for k, v in _expected(inside, "hour").items() if k[1] == "b"}
    _assert_same(got, expected)
    assert [r.bucket for r in got] == [T0, T0 + timedelta(hours=1)]
    assert fleet_rollup(conn, START, END, "hour", machine_ids=[]) == []
    with pytest.raises(ValueError, match="bucket"):
        sensor_rollup(conn, "m1", start, end, "week")  # type: ignore[arg-type]


def test_refresh_is_idempotent(conn: psycopg.Connection) -> None:
    _write(conn, [_reading(m, i) for m in MACHINES for i in range(N)])
    now = END + timedelta(minutes=5)
    newest_minute = floor_to(END - STEP, BUCKETS["minute"])  # the last reading's minute
    assert refresh_rollups(conn, now) == Refreshed(START, newest_minute, ())
    conn.commit()
    first = (_table(conn, "readings_1m"), _table(conn, "readings_1h"))
    marks = conn.execute(
        "select rollup, watermark from rollup_watermarks where rollup <> 'received' order by 1"
    ).fetchall()

    refresh_rollups(conn, now)
    conn.commit()

    assert (_table(conn, "readings_1m"), _table(conn, "readings_1h")) == first
    assert marks == [("hour", T0 + timedelta(hours=1)), ("minute", newest_minute)]

    # Later, with one more reading: the same minutes before it, the hour before it now complete.
    _write(conn, [_reading("m1", N, ts=T0 + timedelta(hours=2, minutes=1))])
    refresh_rollups(conn, now + timedelta(minutes=30))
    conn.commit()
    minutes = _table(conn, "readings_1m")
    assert set(first[0]) < set(minutes)
    assert {r[2] for r in set(minutes) - set(first[0])} == {newest_minute}
    hours = _table(conn, "readings_1h")
    assert [r for r in hours if r[2] < T0 + timedelta(hours=1)] == first[1]
    assert {r[2] for r in hours} - {r[2] for r in first[1]} == {T0 + timedelta(hours=1)}


def _minute_table(conn: psycopg.Connection) -> list[RollupRow]:
    got = conn.execute(
        "select machine_id, sensor, ts, n, total / n, min_value, max_value from readings_1m"
        " order by 1, 2, 3"
    ).fetchall()
    return [RollupRow(*r) for r in got]


def _received_long_ago(conn: psycopg.Connection, rows: list[Telemetry]) -> None:
    """Backdate received_at, as if these rows had arrived before the previous refresh."""
    conn.execute(
        "update readings set received_at = received_at - interval '1 day'"
        " where (machine_id, seq) in (select * from unnest(%s::text[], %s::bigint[]))",
        ([t.machine for t in rows], [t.seq for t in rows]),
    )
    conn.commit()


def test_late_data_is_counted_by_the_grace_window_or_by_received_at(
    conn: psycopg.Connection,
) -> None:
    rows = _write(conn, [_reading(m, i) for m in MACHINES for i in range(N)])
    _received_long_ago(conn, rows)  # so that only what follows counts as received since
    now = END + timedelta(minutes=1)
    refresh_rollups(conn, now)
    conn.commit()

    # Within grace of the watermark (01:34), into materialised minutes, one of them a new machine:
    # counted even when received_at cannot tell (backdated).
    watermark = floor_to(END - STEP, BUCKETS["minute"])
    in_grace = [
        _reading("m1", 10_000, ts=watermark - GRACE + timedelta(seconds=30)),
        _reading("m9", 1, ts=watermark - timedelta(seconds=1)),
    ]
    # Two hours late: counted because it was received after the previous refresh ...
    backlog = [_reading("m2", 10_001, ts=END - timedelta(hours=2))]
    # ... unless received_at says otherwise (a bulk load with old received_at): then a rebuild.
    unseen = [_reading("m1", 10_002, ts=START + timedelta(minutes=1))]
    _write(conn, in_grace + backlog + unseen)
    _received_long_ago(conn, in_grace + unseen)

    result = refresh_rollups(conn, now + timedelta(minutes=1))
    conn.commit()

    assert result is not None
    assert result.late_ranges == ((T0 - timedelta(hours=1), T0),)  # backlog's hour (23:00)
    seen = rows + in_grace + backlog
    open_minute = floor_to(END - STEP, BUCKETS["minute"])  # the newest reading's: not yet in
    _assert_same(_minute_table(conn), _expected(seen, "minute", before=open_minute))
    _assert_same(fleet_rollup(conn, START, END, "hour"), _expected(seen, "hour"))

    rebuild_rollups(conn, START, START + timedelta(minutes=2))
    rebuild_rollups(conn, END - timedelta(minutes=30), END + timedelta(hours=3))  # past the mark
    conn.commit()

    everything = seen + unseen
    _assert_same(_minute_table(conn), _expected(everything, "minute", before=open_minute))
    _assert_same(fleet_rollup(conn, START, END, "day"), _expected(everything, "day"))


def test_a_replay_of_past_data_is_rolled_up_as_it_arrives(conn: psycopg.Connection) -> None:
    wall_clock = END + timedelta(days=300)  # the simulator's clock is far behind
    first, second = [_reading("m1", i) for i in range(N // 2)], []
    _write(conn, first)
    refresh_rollups(conn, wall_clock)
    conn.commit()
    second = _write(conn, [_reading("m1", i) for i in range(N // 2, N)])
    refresh_rollups(conn, wall_clock + timedelta(minutes=1))
    conn.commit()

    open_minute = floor_to(END - STEP, BUCKETS["minute"])
    _assert_same(_minute_table(conn), _expected(first + second, "minute", before=open_minute))
    _assert_same(fleet_rollup(conn, START, END, "hour"), _expected(first + second, "hour"))
    # Retention counts from the newest reading, not the wall clock: nothing is dropped.
    result = run_maintenance(conn, load_settings(db={"retention_days": 1}), wall_clock)
    conn.commit()
    assert result["readings_rows_deleted"] + result.get("readings_chunks_dropped", 0) == 0
    assert conn.execute("select count(*) from readings").fetchone() == (N,)


def test_retention_drops_only_data_older_than_the_cutoff(conn: psycopg.Connection) -> None:
    settings = load_settings(db={"retention_days": 30})
    now = T0 + timedelta(days=40, hours=12)
    days_old = (45, 31, 30.5, 29, 2, 0)  # ages at `now`; 30 is the cutoff
    rows = _write(
        conn,
        [
            _reading(m, i * 10 + j, ts=now - timedelta(days=age) + j * timedelta(minutes=7))
            for i, age in enumerate(days_old)
            for j in range(10)
            for m in MACHINES
        ],
    )
    refresh_rollups(conn, now - timedelta(days=29, hours=23))
    conn.commit()
    hours_before = _table(conn, "readings_1h")

    result = run_maintenance(conn, settings, now)
    conn.commit()

    cutoff = now - timedelta(days=30)
    kept = [t for t in rows if t.ts >= cutoff]
    assert 0 < len(kept) < len(rows)
    stored = conn.execute("select machine_id, seq, ts from readings order by 1, 2").fetchall()
    assert stored == sorted((t.machine, t.seq, t.ts) for t in kept)
    assert conn.execute("select min(ts) >= %s from readings_1m", (cutoff,)).fetchone() == (True,)
    later = now + timedelta(hours=2)
    _assert_same(fleet_rollup(conn, cutoff, later, "minute"), _expected(kept, "minute"))
    # Hour roll-ups are kept for a year: the old trend is still there, the raw data is not.
    hours_after = _table(conn, "readings_1h")
    old = cutoff - timedelta(hours=1)
    assert {r for r in hours_before if r[2] < old} <= set(hours_after)
    assert min(r[2] for r in hours_after) < cutoff - timedelta(days=10)
    assert result["readings_rows_deleted"] + result.get("readings_chunks_dropped", 0) > 0

    assert run_maintenance(conn, settings, now)["readings_rows_deleted"] == 0  # nothing left


@pytest.mark.timescale
def test_retention_drops_whole_chunks_on_timescaledb(timescale_db_url: str) -> None:
    with psycopg.connect(timescale_db_url) as conn:
        now = T0 + timedelta(days=9)
        _write(conn, [_reading("m1", d, ts=T0 + timedelta(days=d)) for d in range(10)])

        result = run_maintenance(conn, load_settings(db={"retention_days": 5}), now)
        conn.commit()

        # Days 0-3 end by the cutoff (day 4, 00:00): dropped as chunks, not row by row.
        assert result["readings_chunks_dropped"] == 4
        assert result["readings_rows_deleted"] == 0
        days = conn.execute("select seq from readings order by seq").fetchall()
        assert days == [(d,) for d in range(4, 10)]


def test_each_server_of_the_matrix_is_what_its_name_says(
    conn: psycopg.Connection, request: pytest.FixtureRequest
) -> None:
    server = request.node.callspec.params["any_db_url"]
    row = conn.execute(
        "select current_setting('server_version_num')::int / 10000,"
        " exists (select 1 from pg_extension where extname = 'timescaledb')"
    ).fetchone()
    assert (
        row == {"postgres15": (15, False), "embedded": (18, False), "timescale": (15, True)}[server]
    )
    hyper = conn.execute("select to_regclass('timescaledb_information.hypertables')").fetchone()
    if server == "timescale":
        tables = conn.execute(
            "select hypertable_name from timescaledb_information.hypertables"
            " where hypertable_schema = current_schema() order by 1"
        ).fetchall()
        assert [t for (t,) in tables] == [
            "machine_events",
            "predictions",
            "readings",
            "readings_1h",
            "readings_1m",
        ]
    else:
        assert hyper == (None,)


@pytest.mark.allow_errors  # the point: a failed tick is logged as an ERROR and retried
def test_maintenance_loop_survives_a_failed_tick_and_stops_when_asked(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with psycopg.connect(db_url) as conn:
        _write(conn, [_reading("m1", i) for i in range(20)])
    attempts = []

    def connect() -> psycopg.Connection:
        attempts.append(1)
        if len(attempts) == 1:
            raise StorageUnavailable("database unreachable: first tick")
        return psycopg.connect(db_url)

    stop = threading.Event()
    loop = threading.Thread(
        target=maintenance_loop,
        args=(connect, load_settings(), stop),
        kwargs={"interval_s": 0.05, "clock": lambda: END},
    )
    loop.start()
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            for _ in range(200):
                if conn.execute("select count(*) from rollup_watermarks").fetchone() != (0,):
                    break
                stop.wait(0.05)
    finally:
        stop.set()
        loop.join(timeout=10)

    assert not loop.is_alive()
    assert len(attempts) >= 2
    assert "maintenance tick failed" in caplog.text
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select count(*) from readings_1m").fetchone() != (0,)

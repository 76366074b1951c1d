"""TimescaleDB on the machine's PostgreSQL: hypertables and time_bucket on throwaway tables.

The server is the one `make timescaledb` (scripts/timescaledb.sh) prepares:
FOREWARN_TEST_TIMESCALE_URL, default postgresql://127.0.0.1:5432/test_timescale. Without it the
`timescale` tests skip and say why; with FOREWARN_REQUIRE_TIMESCALE=1 (CI) they fail instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from forewarn.errors import StorageError
from forewarn.storage.schemas import schema_url as with_schema
from forewarn.storage.timescale import (
    enable_hypertables,
    timescale_available,
    timescale_license,
    timescale_schema,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOURS = 72  # three whole days of hourly rows per machine


@pytest.fixture(scope="module")
def timescale_url(timescale_server_url: str) -> str:
    """The shared TimescaleDB fixture (skips, or fails under FOREWARN_REQUIRE_TIMESCALE=1)."""
    return timescale_server_url


@pytest.fixture
def ts_conn(timescale_url: str) -> Iterator[psycopg.Connection]:
    """A connection whose search_path is a fresh schema, dropped (with its chunks) afterwards."""
    schema = f"ts_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(timescale_url, autocommit=True) as admin:
        admin.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
    try:
        with psycopg.connect(with_schema(timescale_url, schema)) as conn:
            yield conn
    finally:
        with psycopg.connect(timescale_url, autocommit=True) as admin:
            admin.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))


def _make_readings(conn: psycopg.Connection, machines: tuple[str, ...] = ("m1", "m2")) -> None:
    """Hourly rows from T0, value = hour index (m2: twice that), like the readings table's key."""
    conn.execute(
        "create table sensor_readings (machine_id text not null, ts timestamptz not null,"
        " seq bigint not null, value double precision not null,"
        " primary key (machine_id, seq, ts))"
    )
    with conn.cursor().copy("copy sensor_readings (machine_id, ts, seq, value) from stdin") as cp:
        for factor, machine in enumerate(machines, start=1):
            for i in range(HOURS):
                cp.write_row((machine, T0 + timedelta(hours=i), i, float(i * factor)))
    conn.commit()


def _dimension_interval(conn: psycopg.Connection, table: str) -> timedelta:
    row = conn.execute(
        "select time_interval from timescaledb_information.dimensions"
        " where hypertable_schema = current_schema() and hypertable_name = %s",
        (table,),
    ).fetchone()
    assert row is not None, f"{table} is not a hypertable"
    return row[0]


def _chunks(conn: psycopg.Connection, table: str) -> int:
    schema = sql.Identifier(timescale_schema(conn) or "public")
    query = sql.SQL("select count(*) from {}.show_chunks(%s::regclass)").format(schema)
    row = conn.execute(query, (table,)).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.timescale
def test_reports_the_licence_and_schema(ts_conn: psycopg.Connection) -> None:
    assert timescale_available(ts_conn)
    assert timescale_license(ts_conn) in {"apache", "timescale"}
    assert timescale_schema(ts_conn) == "public"


@pytest.mark.timescale
def test_hypertable_keeps_existing_rows_and_chunks_them_by_interval(
    ts_conn: psycopg.Connection,
) -> None:
    _make_readings(ts_conn)

    enable_hypertables(ts_conn, {"sensor_readings": "1 day"})
    ts_conn.commit()

    assert _dimension_interval(ts_conn, "sensor_readings") == timedelta(days=1)
    assert _chunks(ts_conn, "sensor_readings") == 3  # 72 hourly rows from midnight: 3 days
    assert ts_conn.execute("select count(*) from sensor_readings").fetchone() == (2 * HOURS,)

    # A fourth day lands in a new chunk.
    ts_conn.execute(
        "insert into sensor_readings values ('m1', %s, %s, 0)", (T0 + timedelta(days=3), HOURS)
    )
    ts_conn.commit()
    assert _chunks(ts_conn, "sensor_readings") == 4


@pytest.mark.timescale
def test_enabling_again_is_idempotent_and_retunes_the_interval(ts_conn: psycopg.Connection) -> None:
    _make_readings(ts_conn)
    enable_hypertables(ts_conn, {"sensor_readings": "1 day"})
    ts_conn.commit()

    enable_hypertables(ts_conn, {"sensor_readings": "12 hours"})
    ts_conn.commit()

    assert _dimension_interval(ts_conn, "sensor_readings") == timedelta(hours=12)
    assert _chunks(ts_conn, "sensor_readings") == 3  # existing chunks are left as they were
    assert ts_conn.execute("select count(*) from sensor_readings").fetchone() == (2 * HOURS,)


@pytest.mark.timescale
def test_time_bucket_rolls_hourly_rows_up_per_day(ts_conn: psycopg.Connection) -> None:
    _make_readings(ts_conn)
    enable_hypertables(ts_conn, {"sensor_readings": "1 day"})
    ts_conn.commit()
    schema = sql.Identifier(timescale_schema(ts_conn) or "public")

    rows = ts_conn.execute(
        sql.SQL(
            "select machine_id, {}.time_bucket('1 day', ts) as day, count(*), sum(value), max(value)"
            " from sensor_readings group by 1, 2 order by 1, 2"
        ).format(schema)
    ).fetchall()

    # m1's values are the hour index 0..71: day d sums 24*d*24 + (0+...+23) = 576*d + 276.
    expected_m1 = [
        (T0 + timedelta(days=d), 24, 576.0 * d + 276.0, 24.0 * d + 23.0) for d in range(3)
    ]
    assert [r[1:] for r in rows if r[0] == "m1"] == expected_m1
    assert [r[1:] for r in rows if r[0] == "m2"] == [
        (day, n, 2 * total, 2 * top) for day, n, total, top in expected_m1
    ]


@pytest.mark.timescale
def test_unknown_table_is_a_storage_error(ts_conn: psycopg.Connection) -> None:
    with pytest.raises(StorageError, match="no_such_table"):
        enable_hypertables(ts_conn, {"no_such_table": "1 day"})


def test_plain_postgresql_reports_no_timescale_and_leaves_tables_alone(
    embedded_server_url: str,
) -> None:
    with psycopg.connect(embedded_server_url) as conn:
        conn.execute("create temporary table sensor_readings (ts timestamptz not null)")
        assert not timescale_available(conn)
        assert timescale_license(conn) is None
        assert timescale_schema(conn) is None

        enable_hypertables(conn, {"sensor_readings": "1 day"})  # a no-op, no error

        assert conn.execute("select to_regclass('sensor_readings')").fetchone() != (None,)

"""Closed chunks of readings get packed indexes; compression follows the server's licence.

Sizes are read from the catalog by the test itself (pg_indexes_size of the chunk), not from what
the code under test records.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from forewarn.errors import StorageError
from forewarn.storage.compaction import SETTLE, compact_closed_chunks, compaction_loop
from forewarn.storage.readings import insert_readings
from forewarn.storage.schemas import temporary_schema
from forewarn.storage.timescale import timescale_license
from tests.factories import make_telemetry

DAY1 = datetime(2026, 3, 2, tzinfo=UTC)  # a chunk boundary (1-day chunks, aligned to UTC days)
MACHINES = [f"m{i:02d}" for i in range(20)]
SECONDS = 2000  # readings per machine on the first day


def _fill(conn: psycopg.Connection) -> datetime:
    """Day 1: every machine once a second, written as ingest does (all machines per batch);
    day 2: one reading per machine, 3 h in. Returns the newest reading's time."""
    for start in range(0, SECONDS, 50):
        insert_readings(
            conn,
            [
                make_telemetry(m, seq=s + 1, ts=DAY1 + timedelta(seconds=s), values={"a": s / 7})
                for s in range(start, start + 50)
                for m in MACHINES
            ],
        )
        conn.commit()
    newest = DAY1 + timedelta(days=1, hours=3)
    insert_readings(conn, [make_telemetry(m, seq=SECONDS + 1, ts=newest) for m in MACHINES])
    conn.commit()
    return newest


def _chunks(conn: psycopg.Connection) -> dict[datetime, tuple[str, int, int, bool]]:
    """range_start -> (chunk, index bytes, indexes, all valid) of each chunk of readings."""
    rows = conn.execute(
        "select c.range_start, format('%I.%I', c.chunk_schema, c.chunk_name)"
        " from timescaledb_information.chunks c"
        " where c.hypertable_schema = current_schema() and c.hypertable_name = 'readings'"
    ).fetchall()
    out = {}
    for start, chunk in rows:
        row = conn.execute(
            "select pg_indexes_size(%s::regclass), count(*), bool_and(i.indisvalid)"
            " from pg_index i where i.indrelid = %s::regclass",
            (chunk, chunk),
        ).fetchone()
        assert row is not None
        out[start] = (chunk, int(row[0]), int(row[1]), bool(row[2]))
    conn.commit()
    return out


@pytest.mark.timescale
def test_a_closed_chunk_gets_packed_indexes_once_and_the_open_one_is_left_alone(
    timescale_db_url: str,
) -> None:
    with psycopg.connect(timescale_db_url) as conn:
        newest = _fill(conn)
        before = _chunks(conn)
        assert sorted(before) == [DAY1, DAY1 + timedelta(days=1)]

        # not yet closed: its range ends less than SETTLE before the newest reading
        early = DAY1 + timedelta(days=1) + SETTLE - timedelta(minutes=1)
        assert compact_closed_chunks(conn, early) == 0
        assert compact_closed_chunks(conn, newest) == 1
        assert compact_closed_chunks(conn, newest) == 0  # done once

        after = _chunks(conn)
        chunk, size0, n0, _ = before[DAY1]
        _, size1, n1, valid = after[DAY1]
        assert (n1, valid) == (n0, True)
        assert size1 < 0.75 * size0, (size0, size1)  # ~50 % leaf density -> ~90 %
        assert after[DAY1 + timedelta(days=1)] == before[DAY1 + timedelta(days=1)]
        recorded = conn.execute(
            "select chunk, index_bytes_before, index_bytes_after from chunk_compactions"
        ).fetchall()
        assert recorded == [(chunk, size0, size1)]
        assert conn.execute("select count(*) from readings").fetchone() == (
            len(MACHINES) * (SECONDS + 1),
        )
        assert conn.execute(
            "select count(*) from readings where machine_id = 'm07' and seq between 100 and 199"
        ).fetchone() == (100,)


@pytest.mark.timescale
def test_an_invalid_index_left_on_a_chunk_is_dropped_before_the_rebuild(
    timescale_db_url: str,
) -> None:
    with psycopg.connect(timescale_db_url) as conn:
        newest = _fill(conn)
        chunk = _chunks(conn)[DAY1][0]
        conn.autocommit = True
        # what a concurrent build cut short leaves: an index marked invalid
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(f"create unique index concurrently leftover_ccnew on {chunk} (machine_id)")
        invalid = "select count(*) from pg_index where indrelid = %s::regclass and not indisvalid"
        assert conn.execute(invalid, (chunk,)).fetchone() == (1,)
        conn.autocommit = False
        conn.commit()

        assert compact_closed_chunks(conn, newest) == 1

        assert conn.execute(invalid, (chunk,)).fetchone() == (0,)
        conn.commit()
        _, _, n, valid = _chunks(conn)[DAY1]
        assert (n, valid) == (4, True)  # primary key, ts, (machine_id, ts), BRIN on received_at


@pytest.mark.timescale
def test_the_loop_compacts_closed_chunks_until_stopped(timescale_db_url: str) -> None:
    with psycopg.connect(timescale_db_url) as conn:
        newest = _fill(conn)
    stop = threading.Event()
    loop = threading.Thread(
        target=compaction_loop,
        args=(lambda: psycopg.connect(timescale_db_url), stop),
        kwargs={"interval_s": 0.05, "clock": lambda: newest},
    )
    loop.start()
    try:
        with psycopg.connect(timescale_db_url, autocommit=True) as conn:
            for _ in range(400):
                if conn.execute("select count(*) from chunk_compactions").fetchone() == (1,):
                    break
                stop.wait(0.05)
    finally:
        stop.set()
        loop.join(timeout=30)
    assert not loop.is_alive()
    with psycopg.connect(timescale_db_url) as conn:
        assert conn.execute("select count(*) from chunk_compactions").fetchone() == (1,)


@pytest.mark.timescale
def test_compaction_refuses_to_run_inside_a_transaction(timescale_db_url: str) -> None:
    with psycopg.connect(timescale_db_url) as conn:
        conn.execute("select 1")  # opens the implicit transaction
        with pytest.raises(StorageError, match="outside a transaction"):
            compact_closed_chunks(conn, DAY1)


@pytest.fixture
def embedded_db_url(embedded_server_url: str) -> Iterator[str]:
    with temporary_schema(embedded_server_url, "t") as url:
        yield url


def test_plain_postgresql_has_no_chunks_to_compact(embedded_db_url: str) -> None:
    with psycopg.connect(embedded_db_url) as conn:
        _fill(conn)
        assert compact_closed_chunks(conn, DAY1 + timedelta(days=2)) == 0
        assert conn.execute("select count(*) from chunk_compactions").fetchone() == (0,)


@pytest.mark.timescale
def test_compression_is_enabled_exactly_where_the_licence_has_it(timescale_db_url: str) -> None:
    with psycopg.connect(timescale_db_url) as conn:
        licence = timescale_license(conn)
        enabled = conn.execute(
            "select hypertable_name, compression_enabled from timescaledb_information.hypertables"
            " where hypertable_schema = current_schema() and hypertable_name like 'readings%'"
            " order by 1"
        ).fetchall()
        policies = conn.execute(
            "select hypertable_name from timescaledb_information.jobs"
            " where proc_name = 'policy_compression' and hypertable_schema = current_schema()"
            " order by 1"
        ).fetchall()
    if licence == "timescale":
        assert ("readings", True) in enabled and ("readings_1m", True) in enabled
        assert policies == [("readings",), ("readings_1m",)]
    else:  # the Apache edition: migrate skipped compression without failing
        assert licence == "apache"
        assert enabled == [("readings", False), ("readings_1h", False), ("readings_1m", False)]
        assert policies == []

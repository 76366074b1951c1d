"""What the fleet benchmark reads back from a run's schema: sizes, lag, scoring passes, scores.

Used by `tools/bench/fleet.py` only; kept here because all SQL lives in `forewarn.storage`.
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg import sql


def count_readings(conn: psycopg.Connection) -> int:
    """Rows in readings."""
    row = conn.execute("select count(*) from readings").fetchone()
    return int(row[0]) if row else 0


def table_bytes(conn: psycopg.Connection, table: str) -> tuple[int, int, int]:
    """(heap + toast, indexes, total) bytes of a table, its hypertable chunks included."""
    # the view is looked up first: a query naming it fails to plan where TimescaleDB is absent
    has_view = conn.execute(
        "select to_regclass('timescaledb_information.hypertables') is not null"
    ).fetchone()
    hyper = (
        conn.execute(
            "select exists(select 1 from timescaledb_information.hypertables"
            " where hypertable_schema = current_schema() and hypertable_name = %s)",
            (table,),
        ).fetchone()
        if has_view and has_view[0]
        else None
    )
    if hyper and hyper[0]:
        ext = conn.execute(
            "select extnamespace::regnamespace::text from pg_extension where extname = 'timescaledb'"
        ).fetchone()
        assert ext is not None
        row = conn.execute(
            sql.SQL(
                "select coalesce(sum(table_bytes + coalesce(toast_bytes, 0)), 0),"
                " coalesce(sum(index_bytes), 0), coalesce(sum(total_bytes), 0)"
                " from {}.hypertable_detailed_size(%s::regclass)"
            ).format(sql.Identifier(ext[0])),
            (table,),
        ).fetchone()
    else:
        row = conn.execute(
            "select pg_total_relation_size(%s::regclass) - pg_indexes_size(%s::regclass),"
            " pg_indexes_size(%s::regclass), pg_total_relation_size(%s::regclass)",
            (table, table, table, table),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def schema_bytes(conn: psycopg.Connection) -> int:
    """Every table of the schema (hypertables with their chunks)."""
    tables = [
        r[0]
        for r in conn.execute(
            "select relname from pg_class where relnamespace = current_schema()::regnamespace"
            " and relkind in ('r', 'p')"
        ).fetchall()
    ]
    return sum(table_bytes(conn, t)[2] for t in tables)


def value_sizes(conn: psycopg.Connection, sample: int = 20000) -> tuple[float, float]:
    """Average bytes of a reading's jsonb values, and of the same values as a float4[]."""
    conn.execute("vacuum analyze readings")
    row = conn.execute(
        "select avg(pg_column_size(values)), avg(pg_column_size(array(select v::float4"
        " from jsonb_each_text(values) as e(k, v) order by k)))"
        " from (select values from readings limit %s) s",
        (sample,),
    ).fetchone()
    assert row is not None
    return float(row[0] or 0), float(row[1] or 0)


def reading_times(conn: psycopg.Connection) -> list[tuple[float, float]]:
    """(event time, received time) of every reading, as epoch seconds."""
    rows = conn.execute(
        "select extract(epoch from ts), extract(epoch from received_at) from readings"
    ).fetchall()
    return [(float(r[0]), float(r[1])) for r in rows]


def pass_times(conn: psycopg.Connection) -> list[tuple[datetime, datetime]]:
    """(start, end) of every streaming pass (all partitions a worker scored in one pass)."""
    rows = conn.execute(
        "select started_at, max(finished_at) from score_passes"
        " group by worker, started_at order by started_at"
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def scoring_delays(conn: psycopg.Connection) -> list[float]:
    """Seconds from storing each pass's newest reading of a machine to the pass's end."""
    rows = conn.execute(
        "select extract(epoch from p.finished_at - r.received_at)"
        " from score_passes p, unnest(p.machines, p.first_seq, p.last_seq) as u(m, f, l)"
        " join readings r on r.machine_id = u.m and r.seq = u.l"
    ).fetchall()
    return [float(r[0]) for r in rows]


def unscored_readings(conn: psycopg.Connection) -> int:
    """Readings newer than the last seq the pass log shows scored for their machine."""
    row = conn.execute(
        "with s as (select u.m, max(u.l) as l from score_passes p,"
        " unnest(p.machines, p.last_seq) as u(m, l) group by u.m)"
        " select count(*) from readings r left join s on s.m = r.machine_id"
        " where r.seq > coalesce(s.l, -1)"
    ).fetchone()
    return int(row[0]) if row else 0


def stream_scores(conn: psycopg.Connection, machine_id: str) -> list[tuple[float, int]]:
    """(streaming score, seq of its reading) of one machine, in time order."""
    rows = conn.execute(
        "select p.failure_prob, r.seq from predictions p join readings r"
        " on r.machine_id = p.machine_id and r.ts = p.ts"
        " where p.machine_id = %s and p.role = 'stream' order by p.ts",
        (machine_id,),
    ).fetchall()
    return [(float(r[0]), int(r[1])) for r in rows]


def index_bytes(conn: psycopg.Connection, table: str) -> dict[str, int]:
    """Bytes of each index of a table by name, summed over its hypertable chunks."""
    ext = conn.execute(
        "select extnamespace::regnamespace::text from pg_extension where extname = 'timescaledb'"
    ).fetchone()
    names = [
        str(r[0])
        for r in conn.execute(
            "select c.relname from pg_index i join pg_class c on c.oid = i.indexrelid"
            " where i.indrelid = %s::regclass order by 1",
            (table,),
        ).fetchall()
    ]
    size = (
        sql.SQL("select coalesce({}.hypertable_index_size(%s::regclass), 0)").format(
            sql.Identifier(ext[0])
        )
        if ext is not None
        else sql.SQL("select pg_relation_size(%s::regclass)")
    )
    out = {}
    for name in names:
        row = conn.execute(size, (name,)).fetchone()
        out[name] = int(row[0]) if row else 0
    return out


def backend_clients(conn: psycopg.Connection) -> dict[int, str]:
    """Server process id -> application name of every client backend of this database."""
    rows = conn.execute(
        "select pid, coalesce(nullif(application_name, ''), 'unnamed') from pg_stat_activity"
        " where datname = current_database() and backend_type = 'client backend'"
    ).fetchall()
    return {int(r[0]): str(r[1]) for r in rows}

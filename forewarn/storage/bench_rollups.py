"""Benchmark: readings ingest and 7-day roll-up queries, plain PostgreSQL against TimescaleDB.

Per server, in a throwaway schema (dropped afterwards): COPY ``machines x days`` of readings
through :func:`~forewarn.storage.readings.insert_readings` in committed batches, then time the
7-day hourly :func:`~forewarn.storage.rollups.sensor_rollup` of every machine twice: before any
refresh (aggregated from raw readings: ``time_bucket`` or ``date_bin`` over the readings) and after
:func:`~forewarn.storage.rollups.refresh_rollups` (read from ``readings_1h``).
"""

from __future__ import annotations

import logging
import random
import statistics
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from forewarn.contract import Telemetry
from forewarn.storage.migrate import migrate
from forewarn.storage.readings import insert_readings
from forewarn.storage.rollups import refresh_rollups, sensor_rollup
from forewarn.storage.scratch_server import scratch_postgres
from forewarn.storage.timescale import timescale_license, timescale_schema

log = logging.getLogger(__name__)

SENSORS = ("vibration_rms", "bearing_temp", "flow", "pressure", "current", "speed", "oil", "noise")
END = datetime(2026, 1, 8, tzinfo=UTC)


def _schema_url(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def _batches(
    machines: int, days: float, interval_s: float, batch: int, seed: int
) -> Iterator[list[Telemetry]]:
    """Readings in arrival order (every machine at t, then t + interval), ``batch`` at a time."""
    rng = random.Random(seed)
    steps = int(days * 86400 / interval_s)
    start = END - timedelta(days=days)
    names = [f"bench-{i:04d}" for i in range(machines)]
    out: list[Telemetry] = []
    for step in range(steps):
        ts = start + timedelta(seconds=step * interval_s)
        for name in names:
            values: dict[str, float | None] = {s: rng.gauss(50.0, 10.0) for s in SENSORS}
            out.append(Telemetry("bench", name, ts, step, values))
            if len(out) == batch:
                yield out
                out = []
    if out:
        yield out


def _percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _query_latency_ms(conn: psycopg.Connection, machines: int, days: float) -> dict[str, float]:
    latencies: list[float] = []
    rows = 0
    for i in range(machines):
        t = time.perf_counter()
        result = sensor_rollup(conn, f"bench-{i:04d}", END - timedelta(days=days), END, "hour")
        latencies.append((time.perf_counter() - t) * 1000.0)
        rows += len(result)
    conn.rollback()  # end the read transaction
    return {
        "p50_ms": statistics.median(latencies),
        "p95_ms": _percentile(latencies, 0.95),
        "mean_ms": statistics.fmean(latencies),
        "rows_per_query": rows / max(1, machines),
    }


def _size_mb(conn: psycopg.Connection, table: str) -> float:
    """Table + indexes (+ chunks of a hypertable), MiB."""
    schema = timescale_schema(conn)
    if schema is not None:
        query = sql.SQL(
            "select coalesce((select {}.hypertable_size(%s::regclass)"
            " where exists (select 1 from timescaledb_information.hypertables"
            " where hypertable_schema = current_schema() and hypertable_name = %s)),"
            " pg_total_relation_size(%s::regclass))"
        ).format(sql.Identifier(schema))
        row = conn.execute(query, (table, table, table)).fetchone()
    else:
        row = conn.execute("select pg_total_relation_size(%s::regclass)", (table,)).fetchone()
    return float(row[0] if row else 0) / 2**20


def bench_server(
    url: str,
    *,
    machines: int = 500,
    days: float = 7.0,
    interval_s: float = 600.0,
    batch: int = 2000,
    seed: int = 1,
) -> dict[str, Any]:
    """Run the benchmark on one server in a throwaway schema; return its figures."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
        version = admin.execute("show server_version").fetchone()
    try:
        with psycopg.connect(_schema_url(url, schema)) as conn:
            migrate(conn)
            conn.commit()
            licence = timescale_license(conn)
            extension = conn.execute(
                "select extversion from pg_extension where extname = 'timescaledb'"
            ).fetchone()
            conn.commit()
            stored, ingest_s = 0, 0.0
            for rows in _batches(machines, days, interval_s, batch, seed):
                t = time.perf_counter()
                stored += insert_readings(conn, rows)
                conn.commit()
                ingest_s += time.perf_counter() - t
            conn.execute("analyze readings")
            conn.commit()
            raw = _query_latency_ms(conn, machines, days)
            t = time.perf_counter()
            refresh_rollups(conn, END)
            conn.commit()
            refresh_s = time.perf_counter() - t
            conn.execute("analyze readings_1m")
            conn.execute("analyze readings_1h")
            conn.commit()
            rolled = _query_latency_ms(conn, machines, days)
            readings_mb = _size_mb(conn, "readings")
            conn.commit()
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema))
            )
    return {
        "server": f"PostgreSQL {version[0] if version else '?'}"
        + (f" + TimescaleDB {extension[0]} ({licence})" if extension else ""),
        "rows": stored,
        "ingest_rows_per_s": stored / ingest_s if ingest_s else 0.0,
        "readings_mb": readings_mb,
        "refresh_s": refresh_s,
        "raw_7d_p50_ms": raw["p50_ms"],
        "raw_7d_p95_ms": raw["p95_ms"],
        "rollup_7d_p50_ms": rolled["p50_ms"],
        "rollup_7d_p95_ms": rolled["p95_ms"],
        "rows_per_query": rolled["rows_per_query"],
    }


# Settings the scratch plain cluster copies from the TimescaleDB server, for a fair comparison.
_COPIED_SETTINGS = (
    "shared_buffers",
    "fsync",
    "synchronous_commit",
    "autovacuum",
    "max_wal_size",
    "work_mem",
)


@contextmanager
def _plain_twin(timescale_url: str) -> Iterator[str]:
    """A scratch cluster from the TimescaleDB server's binaries and settings, without TimescaleDB."""
    with psycopg.connect(timescale_url, autocommit=True) as conn:
        row = conn.execute("select setting from pg_config where name = 'BINDIR'").fetchone()
        settings = {}
        for name in _COPIED_SETTINGS:
            value = conn.execute(sql.SQL("show {}").format(sql.Identifier(name))).fetchone()
            settings[name] = str(value[0]) if value else ""
    assert row is not None
    with scratch_postgres(Path(row[0]), settings) as url:
        yield url


def bench_timescale(
    timescale_url: str,
    plain_url: str | None = None,
    *,
    machines: int = 500,
    days: float = 7.0,
    interval_s: float = 600.0,
    batch: int = 2000,
) -> dict[str, dict[str, Any]]:
    """The same benchmark without and with TimescaleDB: ``{"postgresql": ..., "timescaledb": ...}``.

    ``plain_url`` None (the default) starts a scratch cluster from the TimescaleDB server's own
    binaries and main settings, without the extension: same major version, same machine.
    """

    def run(url: str) -> dict[str, Any]:
        return bench_server(url, machines=machines, days=days, interval_s=interval_s, batch=batch)

    if plain_url is not None:
        plain = run(plain_url)
    else:
        with _plain_twin(timescale_url) as url:
            plain = run(url)
    return {"postgresql": plain, "timescaledb": run(timescale_url)}


LABELS = {
    "server": "server",
    "rows": "readings stored",
    "ingest_rows_per_s": "ingest, rows/s (COPY, batches)",
    "readings_mb": "readings size, MiB",
    "refresh_s": "first refresh_rollups, s",
    "raw_7d_p50_ms": "7-day hourly query from raw, p50 ms",
    "raw_7d_p95_ms": "7-day hourly query from raw, p95 ms",
    "rollup_7d_p50_ms": "7-day hourly query from roll-ups, p50 ms",
    "rollup_7d_p95_ms": "7-day hourly query from roll-ups, p95 ms",
    "rows_per_query": "rows per query",
}


def format_table(results: dict[str, dict[str, Any]]) -> str:
    """The results side by side as a markdown table."""
    names = list(results)
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for key, label in LABELS.items():
        cells = []
        for name in names:
            value = results[name].get(key, "")
            cells.append(f"{value:,.1f}" if isinstance(value, float) else str(value))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

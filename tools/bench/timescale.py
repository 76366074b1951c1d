"""Benchmark: readings ingest and 7-day roll-up queries, plain PostgreSQL against TimescaleDB.

Per server, in a throwaway schema (dropped afterwards): COPY ``machines x days`` of readings
through :func:`~forewarn.storage.readings.insert_readings` in committed batches, then time the
7-day hourly :func:`~forewarn.storage.rollups.sensor_rollup` of every machine twice: before any
refresh (aggregated from raw readings: ``time_bucket`` or ``date_bin`` over the readings) and after
:func:`~forewarn.storage.rollups.refresh_rollups` (read from ``readings_1h``). The servers run in
lock-step (see :func:`bench_servers`), as these machines are shared and their load varies.
"""

from __future__ import annotations

import contextlib
import logging
import random
import statistics
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from forewarn.contract import Telemetry
from forewarn.storage.readings import insert_readings
from forewarn.storage.rollups import refresh_rollups, sensor_rollup
from forewarn.storage.schemas import temporary_schema
from forewarn.storage.timescale import (
    relation_size_mb,
    server_bin_dir,
    server_versions,
    timescale_license,
)
from tools.scratch_server import scratch_postgres

log = logging.getLogger(__name__)

SENSORS = ("vibration_rms", "bearing_temp", "flow", "pressure", "current", "speed", "oil", "noise")
END = datetime(2026, 1, 8, tzinfo=UTC)


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


def _latency(samples: Sequence[float]) -> tuple[float, float]:
    """(p50, p95) in ms of samples in seconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return statistics.median(ordered) * 1000.0, p95 * 1000.0


def _timed_queries(
    conns: dict[str, psycopg.Connection], machines: int, days: float
) -> dict[str, tuple[float, float, float]]:
    """Per server: (p50 ms, p95 ms, rows per query) of every machine's hourly roll-up over the window.

    The servers take turns machine by machine, so both see the same background load.
    """
    samples: dict[str, list[float]] = {name: [] for name in conns}
    rows = dict.fromkeys(conns, 0)
    for i in range(machines):
        for name, conn in conns.items():
            t = time.perf_counter()
            got = sensor_rollup(conn, f"bench-{i:04d}", END - timedelta(days=days), END, "hour")
            samples[name].append(time.perf_counter() - t)
            rows[name] += len(got)
    for conn in conns.values():
        conn.rollback()  # end the read transaction
    return {name: (*_latency(samples[name]), rows[name] / max(1, machines)) for name in conns}


def _size_mb(conn: psycopg.Connection, table: str) -> float:
    """Table + indexes (+ chunks of a hypertable), MiB."""
    return relation_size_mb(conn, table)


@contextlib.contextmanager
def _scratch_schema(url: str) -> Iterator[psycopg.Connection]:
    """A connection to a new migrated schema on ``url``, dropped with everything in it afterwards."""
    with temporary_schema(url, "bench") as surl, psycopg.connect(surl) as conn:
        yield conn


def _describe(conn: psycopg.Connection) -> str:
    version, extension = server_versions(conn)
    licence = timescale_license(conn)
    conn.commit()
    return f"PostgreSQL {version}" + (
        f" + TimescaleDB {extension} ({licence})" if extension else ""
    )


def bench_servers(
    urls: dict[str, str],
    *,
    machines: int = 500,
    days: float = 7.0,
    interval_s: float = 600.0,
    batch: int = 2000,
    seed: int = 1,
) -> dict[str, dict[str, Any]]:
    """Run the benchmark on each server (name -> URL) in lock-step; return figures per server.

    Each batch is written to every server before the next is generated, and queries alternate
    between servers, so that load from elsewhere on the machine hits them alike. Only the first
    refresh (one long operation per server) runs one server after the other.
    """
    with contextlib.ExitStack() as stack:
        conns = {name: stack.enter_context(_scratch_schema(url)) for name, url in urls.items()}
        out: dict[str, dict[str, Any]] = {
            name: {"server": _describe(c)} for name, c in conns.items()
        }
        stored = dict.fromkeys(conns, 0)
        ingest_s = dict.fromkeys(conns, 0.0)
        for rows in _batches(machines, days, interval_s, batch, seed):
            for name, conn in conns.items():
                t = time.perf_counter()
                stored[name] += insert_readings(conn, rows)
                conn.commit()
                ingest_s[name] += time.perf_counter() - t
        for conn in conns.values():
            conn.execute("analyze readings")
            conn.commit()
        raw = _timed_queries(conns, machines, days)
        refresh_s = {}
        for name, conn in conns.items():
            t = time.perf_counter()
            refresh_rollups(conn, END)
            conn.commit()
            refresh_s[name] = time.perf_counter() - t
            conn.execute("analyze readings_1m")
            conn.execute("analyze readings_1h")
            conn.commit()
        rolled = _timed_queries(conns, machines, days)
        for name, conn in conns.items():
            out[name].update(
                {
                    "window": f"{machines} machines x {days:g} days, 1 reading / {interval_s:g} s",
                    "rows": stored[name],
                    "ingest_rows_per_s": stored[name] / ingest_s[name] if ingest_s[name] else 0.0,
                    "readings_mb": _size_mb(conn, "readings"),
                    "refresh_s": refresh_s[name],
                    "raw_query_p50_ms": raw[name][0],
                    "raw_query_p95_ms": raw[name][1],
                    "rollup_query_p50_ms": rolled[name][0],
                    "rollup_query_p95_ms": rolled[name][1],
                    "rows_per_query": rolled[name][2],
                }
            )
            conn.commit()
    return out


# Settings the scratch plain cluster copies from the TimescaleDB server, for a fair comparison.
_COPIED_SETTINGS = (
    "shared_buffers",
    "fsync",
    "synchronous_commit",
    "autovacuum",
    "max_wal_size",
    "work_mem",
)


@contextlib.contextmanager
def _plain_twin(timescale_url: str) -> Iterator[str]:
    """A scratch cluster from the TimescaleDB server's binaries and settings, without TimescaleDB."""
    with psycopg.connect(timescale_url, autocommit=True) as conn:
        bin_dir = server_bin_dir(conn)
        settings = {}
        for name in _COPIED_SETTINGS:
            value = conn.execute(sql.SQL("show {}").format(sql.Identifier(name))).fetchone()
            settings[name] = str(value[0]) if value else ""
    assert bin_dir is not None
    with scratch_postgres(Path(bin_dir), settings) as url:
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

    options: dict[str, Any] = {"machines": machines, "days": days, "interval_s": interval_s}
    if plain_url is not None:
        urls = {"postgresql": plain_url, "timescaledb": timescale_url}
        return bench_servers(urls, batch=batch, **options)
    with _plain_twin(timescale_url) as twin:
        urls = {"postgresql": twin, "timescaledb": timescale_url}
        return bench_servers(urls, batch=batch, **options)


LABELS = {
    "server": "server",
    "window": "data",
    "rows": "readings stored",
    "ingest_rows_per_s": "ingest, rows/s (COPY, batches)",
    "readings_mb": "readings size, MiB",
    "refresh_s": "first refresh_rollups, s",
    "raw_query_p50_ms": "per-machine hourly query, from raw, p50 ms",
    "raw_query_p95_ms": "per-machine hourly query, from raw, p95 ms",
    "rollup_query_p50_ms": "per-machine hourly query, from roll-ups, p50 ms",
    "rollup_query_p95_ms": "per-machine hourly query, from roll-ups, p95 ms",
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

"""The periodic-service loop: passes on a real database, outages counted and retried, stop ends it."""

from __future__ import annotations

import threading

import psycopg

from forewarn.health import LoopHealth
from forewarn.periodic import run_periodic


def test_passes_run_until_stopped(db_url: str) -> None:
    stop = threading.Event()
    seen: list[int] = []

    def step(conn: psycopg.Connection) -> int:
        row = conn.execute("select count(*) from machines").fetchone()
        seen.append(int(row[0]) if row else -1)
        if len(seen) == 3:
            stop.set()
        return 2

    health = LoopHealth("test_pass", max_age_s=60)
    run_periodic("test", db_url, step, stop=stop, interval_s=0.01, health=health)
    assert seen == [0, 0, 0]
    assert health.ready() and health.items._value.get() == 6  # type: ignore[attr-defined]


def test_an_unreachable_database_is_retried_not_fatal() -> None:
    stop = threading.Event()
    health = LoopHealth("test_outage", max_age_s=60)
    timer = threading.Timer(1.5, stop.set)
    timer.start()
    run_periodic(
        "test",
        "postgresql://127.0.0.1:1/none?connect_timeout=1",
        lambda c: 1,
        stop=stop,
        interval_s=0.05,
        health=health,
    )
    assert health.failures._value.get() >= 2  # type: ignore[attr-defined]
    assert not health.ready()

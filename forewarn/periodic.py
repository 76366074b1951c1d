"""One loop for the periodic services (scoring, alerts): a pass every interval, outages retried.

A pass gets an autocommit connection and returns how many items it wrote. A database outage is
logged, counted and retried with doubling backoff (up to 30 s); it never ends the loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from forewarn.errors import StorageUnavailable
from forewarn.health import LoopHealth
from forewarn.storage.db import connect

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


def run_periodic(
    name: str,
    url: str,
    step: Callable[[psycopg.Connection], int],
    *,
    stop: threading.Event,
    interval_s: float,
    health: LoopHealth | None = None,
) -> None:
    """Call ``step(conn)`` every ``interval_s`` until ``stop`` is set."""
    backoff = interval_s
    conn: psycopg.Connection | None = None
    while not stop.is_set():
        try:
            if conn is None or conn.closed:
                conn = connect(url, autocommit=True)
            n = step(conn)
            if health is not None:
                health.ok(n)
            if n:
                log.info("%s: %d item(s)", name, n)
            backoff = interval_s
        except (StorageUnavailable, psycopg.OperationalError) as exc:
            log.warning("%s: database unavailable (%s); retrying in %.1fs", name, exc, backoff)
            if health is not None:
                health.failed()
            if conn is not None:
                conn.close()
            conn = None
            backoff = min(backoff * 2, MAX_BACKOFF_S)
        stop.wait(backoff)
    if conn is not None:
        conn.close()

"""Helpers for the ingest integration tests: seed a registry, publish, run a worker in a thread."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from forewarn.contract import encode, topic_for
from forewarn.settings import Settings, load_settings
from forewarn.storage.assets import upsert_registry
from ingest import CommitInfo, IngestResult, run_ingest
from tests.factories import make_registry, make_telemetry

SITE = "s1"


def seed(db_url: str, machines: int = 5) -> list[str]:
    """Register ``machines`` pumps on site s1; return their ids."""
    reg = make_registry(machines=machines, site=SITE)
    with psycopg.connect(db_url) as conn:
        upsert_registry(conn, reg)
        conn.commit()
    return [m.id for m in reg.machines]


def good_messages(
    root: str, machines: list[str], n: int, first_seq: int = 1
) -> list[tuple[str, bytes, tuple[str, int]]]:
    """``n`` valid telemetry messages as (topic, payload, (machine, seq))."""
    out = []
    for i in range(n):
        machine, seq = machines[i % len(machines)], first_seq + i // len(machines)
        msg = make_telemetry(machine, seq, site=SITE)
        out.append((topic_for(SITE, machine, "telemetry", root), encode(msg), (machine, seq)))
    return out


def worker_settings(root: str, **ingest: Any) -> Settings:
    """Settings for a test worker: its own topic root, no metrics server unless asked."""
    return load_settings(
        mqtt={"topic_root": root, "keepalive_s": 10},
        ingest={"metrics_port": 0, "flush_interval_s": 0.05, **ingest},
    )


class Publisher:
    """A QoS 1 publisher that waits for every PUBACK."""

    def __init__(self, mqtt_url: str) -> None:
        parts = urlsplit(mqtt_url)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-pub-{uuid.uuid4().hex[:8]}"
        )
        self.client.max_inflight_messages_set(500)
        self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, 30)
        self.client.loop_start()

    def publish(self, messages: list[tuple[str, bytes]], pause_s: float = 0.0) -> None:
        infos = []
        for topic, payload in messages:
            infos.append(self.client.publish(topic, payload, qos=1))
            if pause_s:
                time.sleep(pause_s)
        for info in infos:
            info.wait_for_publish(30)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(cond: Callable[[], bool], timeout_s: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def stored_keys(db_url: str) -> list[tuple[str, int]]:
    """(machine, seq) of every reading row, duplicates kept."""
    with psycopg.connect(db_url) as conn:
        return [(m, s) for m, s in conn.execute("select machine_id, seq from readings")]


def count(db_url: str, table: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(f"select count(*) from {table}").fetchone()
    assert row is not None
    return int(row[0])


@dataclass
class Worker:
    """A worker running in a thread of the test process."""

    commits: list[CommitInfo] = field(default_factory=list)
    result: IngestResult | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def messages(self) -> int:
        return sum(c.messages for c in self.commits)


@contextmanager
def running(
    settings: Settings, db_url: str, mqtt_url: str, *, client_id: str | None = None
) -> Iterator[Worker]:
    """Run a worker until the block ends, then drain it; it must drain cleanly."""
    w = Worker()

    def target() -> None:
        w.result = run_ingest(
            settings,
            db_url,
            mqtt_url,
            w.stop,
            client_id=client_id or f"test-ingest-{uuid.uuid4().hex[:8]}",
            on_commit=w.commits.append,
            ready=w.ready,
            session_expiry_s=120,
        )

    thread = threading.Thread(target=target, name="test-ingest")
    thread.start()
    try:
        assert w.ready.wait(15), "ingest did not subscribe (no SUBACK)"
        yield w
    finally:
        w.stop.set()
        thread.join(60)
    assert not thread.is_alive()
    assert w.result is not None and w.result.drained

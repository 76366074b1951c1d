"""`forewarn bench ingest`: bare transport vs naive inserts vs the ingest pipeline, on one message set.

Every pass consumes the same pre-generated messages (a turbofan-like snapshot of 12 sensors each,
for 100 synthetic machines) from a backlog queued at the broker *before* its clock starts: the
consumer connects with a persistent session and holds its network thread while the publisher
sends everything (a Python QoS 1 publisher is slower than a consumer, so publishing while
consuming would measure the publisher). Then the hold is released and the drain is timed.
The passes alternate backlog by backlog, so they all see the same background load
(the machine is shared); the backlog size is bounded by what the broker will queue.

- ``bare``: a plain paho QoS 1 subscriber that only counts (the transport's ceiling here).
- ``naive``: one INSERT per message with autocommit, on the network thread (the usual proof of
  concept). It drains a sample of each backlog (5,000 messages in all) and its rate is
  extrapolated (said in the output).
- ``pipeline``: the real :func:`ingest.run_ingest` until every message is committed.

``lost`` and ``duplicates`` compare the rows in the database with the published set. The lag is
measured in a short live pass afterwards (messages stamped at publish time, paced at
``LIVE_RATE`` msg/s), since a backlog's lag is only its age. Everything runs in a throwaway schema
of the configured database, dropped at the end.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from forewarn.assets import AssetRegistry, Costs, Line, Machine, MachineType, SensorSpec, Site
from forewarn.contract import Telemetry, encode, topic_for
from forewarn.settings import Settings
from forewarn.storage.assets import upsert_registry
from forewarn.storage.readings import create_readings_twin, insert_one_reading, reading_key_counts
from forewarn.storage.schemas import temporary_schema
from ingest.pipeline import CommitInfo
from ingest.service import RECEIVE_MAXIMUM, broker_address, connect_properties, run_ingest

log = logging.getLogger(__name__)

SITE = "bench"
MACHINES = 100
# C-MAPSS-like turbofan sensors: (name, unit, min, max); values are drawn inside the bounds
SENSORS = (
    ("T24", "degR", 600.0, 700.0),
    ("T30", "degR", 1500.0, 1700.0),
    ("T50", "degR", 1300.0, 1500.0),
    ("P30", "psia", 500.0, 600.0),
    ("Nf", "rpm", 2300.0, 2450.0),
    ("Nc", "rpm", 8900.0, 9300.0),
    ("Ps30", "psia", 40.0, 55.0),
    ("phi", "pps/psi", 500.0, 540.0),
    ("NRf", "rpm", 2300.0, 2450.0),
    ("BPR", "-", 8.0, 9.0),
    ("htBleed", "-", 380.0, 400.0),
    ("W31", "lbm/s", 35.0, 42.0),
)
# Messages queued at the broker per timed drain. Debian's stock mosquitto (max_queued_messages
# 1000) held about 16k for a held MQTT 5 subscriber before dropping; Forewarn's configs hold any.
BACKLOG = 10_000
PUBLISH_WINDOW = 20_000  # < 65,535 outstanding QoS 1 publishes (paho's message-id space)
NAIVE_SAMPLE = 5_000
LIVE_RATE = 1_000  # msg/s in the lag pass
LIVE_MESSAGES = 5_000
DRAIN_TIMEOUT_S = 600.0
KEEPALIVE_S = 300  # a held consumer sends no PINGREQ; the broker must not drop it meanwhile


def bench_registry() -> AssetRegistry:
    """100 turbofan-like machines with 12 bounded sensors on one site."""
    turbofan = MachineType(
        "turbofan",
        "Turbofan engine (synthetic)",
        tuple(SensorSpec(*s) for s in SENSORS),
        ("hpc_degradation", "fan_degradation"),
        Costs(5000.0, 50000.0, 8000.0, 1000.0, 24.0, 6.0),
    )
    return AssetRegistry(
        sites=[Site(SITE, "Benchmark site")],
        lines=[Line(f"{SITE}-l1", SITE, "Line one")],
        types=[turbofan],
        machines=[Machine(f"tf-{i:03d}", SITE, f"{SITE}-l1", "turbofan") for i in range(MACHINES)],
    )


def make_messages(n: int, *, seed: int = 7, first_seq: int = 1) -> list[tuple[str, int, bytes]]:
    """``n`` telemetry payloads as (machine, seq, wire bytes), round-robin over the machines."""
    rng = random.Random(seed)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    out = []
    for i in range(n):
        machine = f"tf-{i % MACHINES:03d}"
        seq = first_seq + i // MACHINES
        values: dict[str, float | None] = {
            name: round(rng.uniform(lo, hi), 2) for name, _, lo, hi in SENSORS
        }
        msg = Telemetry(SITE, machine, t0 + timedelta(seconds=seq), seq, values, regime=1)
        out.append((machine, seq, encode(msg)))
    return out


def _client(
    client_id: str, url: str, on_message: Callable[..., None], *, manual: bool = False
) -> mqtt.Client:
    host, port, _tls, v5 = broker_address(url)
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else False,
        manual_ack=manual,
    )
    c.on_message = on_message
    if v5:
        props = connect_properties(600, RECEIVE_MAXIMUM)
        c.connect(host, port, KEEPALIVE_S, clean_start=False, properties=props)
    else:
        c.connect(host, port, KEEPALIVE_S)
    return c


def _subscribe_and_wait(c: mqtt.Client, topic: str) -> None:
    done = threading.Event()
    c.on_subscribe = lambda *_a: done.set()
    c.loop_start()
    c.subscribe(topic, 1)
    if not done.wait(10):
        raise RuntimeError(f"no SUBACK for {topic}")


def publish_all(url: str, root: str, messages: list[tuple[str, int, bytes]]) -> None:
    """Publish at QoS 1 in windows, waiting for every PUBACK."""
    host, port, _tls, v5 = broker_address(url)
    pub = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"bench-pub-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
    )
    pub.max_inflight_messages_set(1000)
    pub.max_queued_messages_set(0)
    pub.connect(host, port, 60)
    pub.loop_start()
    try:
        for start in range(0, len(messages), PUBLISH_WINDOW):
            infos = [
                pub.publish(topic_for(SITE, m, "telemetry", root), payload, qos=1)
                for m, _seq, payload in messages[start : start + PUBLISH_WINDOW]
            ]
            for info in infos:
                info.wait_for_publish(60)
    finally:
        pub.disconnect()
        pub.loop_stop()


def _wait_count(count: Callable[[], int], target: int, timeout_s: float) -> float:
    """Seconds until ``count() >= target`` (raises on timeout)."""
    t0 = time.perf_counter()
    while count() < target:
        if time.perf_counter() - t0 > timeout_s:
            raise TimeoutError(f"only {count()} of {target} after {timeout_s:.0f}s")
        time.sleep(0.002)
    return time.perf_counter() - t0


@dataclass
class Consumer:
    """One pass's consumer: held while a backlog is queued, then timed while it drains."""

    name: str
    root: str
    hold: threading.Event
    count: Callable[[], int]
    per_round: int | None = None  # drain only the first N of each backlog (a sampled pass)
    elapsed_s: float = 0.0
    cpu_s: float = 0.0  # CPU time of this process during the drains (all threads)
    drained: int = 0

    def drain(self, url: str, chunk: list[tuple[str, int, bytes]]) -> None:
        """Queue ``chunk`` while held (clock stopped), then time its drain."""
        target = self.count() + len(chunk)
        self.hold.clear()
        publish_all(url, self.root, chunk)
        t0, cpu0 = time.perf_counter(), time.process_time()
        self.hold.set()
        _wait_count(self.count, target, DRAIN_TIMEOUT_S)
        self.elapsed_s += time.perf_counter() - t0
        self.cpu_s += time.process_time() - cpu0
        self.drained += len(chunk)

    @property
    def rate(self) -> float:
        return self.drained / self.elapsed_s

    @property
    def cpu_us_per_msg(self) -> float:
        """Python-side CPU per message: steadier than rates on a loaded machine."""
        return self.cpu_s / self.drained * 1e6


def drain_interleaved(
    url: str, messages: list[tuple[str, int, bytes]], backlog: int, *consumers: Consumer
) -> None:
    """Feed every consumer the same set, one backlog chunk each in turn.

    Alternating chunk by chunk exposes the passes to the same background load (this machine is
    shared), so their ratio is fairer than that of passes run one after the other.
    """
    for start in range(0, len(messages), backlog):
        chunk = messages[start : start + backlog]
        for consumer in consumers:
            consumer.drain(url, chunk[: consumer.per_round])
            log.info("bench: %s drained %d", consumer.name, consumer.drained)


@contextmanager
def bare_consumer(url: str) -> Iterator[Consumer]:
    """A plain paho QoS 1 subscriber (auto-ack) that only counts."""
    root = f"forewarn-bench-bare-{uuid.uuid4().hex[:8]}/v1"
    hold, n = threading.Event(), [0]

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        hold.wait()
        n[0] += 1

    c = _client(f"bench-bare-{uuid.uuid4().hex[:8]}", url, on_message)
    _subscribe_and_wait(c, f"{root}/+/+/telemetry")
    try:
        yield Consumer("bare", root, hold, lambda: n[0])
    finally:
        hold.set()
        c.disconnect()
        c.loop_stop()


@contextmanager
def naive_consumer(url: str, db_url: str, per_round: int) -> Iterator[Consumer]:
    """One autocommitted INSERT per message on the network thread (the usual proof of concept).

    It drains only ``per_round`` messages of each backlog round: its rate is extrapolated.
    """
    root = f"forewarn-bench-naive-{uuid.uuid4().hex[:8]}/v1"
    hold, n = threading.Event(), [0]
    with psycopg.connect(db_url, autocommit=True) as conn:
        create_readings_twin(conn, "bench_naive")

        def on_message(_c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
            hold.wait()
            body = json.loads(m.payload)
            insert_one_reading(
                conn,
                "bench_naive",
                body["machine"],
                body["seq"],
                body["ts"],
                body.get("regime"),
                body["values"],
            )
            n[0] += 1

        c = _client(f"bench-naive-{uuid.uuid4().hex[:8]}", url, on_message)
        _subscribe_and_wait(c, f"{root}/+/+/telemetry")
        try:
            yield Consumer("naive", root, hold, lambda: n[0], per_round=per_round)
        finally:
            hold.set()
            c.disconnect()
            c.loop_stop()


class _Committed:
    def __init__(self) -> None:
        self.readings = 0
        self.lags_s: list[float] = []
        self.record_lag = False

    def __call__(self, info: CommitInfo) -> None:
        self.readings += info.written.readings
        if self.record_lag:
            self.lags_s.extend(info.lags_s)


@contextmanager
def pipeline_consumer(
    settings: Settings, db_url: str, url: str
) -> Iterator[tuple[Consumer, _Committed]]:
    """The real ingest (:func:`ingest.run_ingest`) in a thread, counting committed readings."""
    root = f"forewarn-bench-pipe-{uuid.uuid4().hex[:8]}/v1"
    s = settings.model_copy(deep=True)
    s.mqtt.topic_root, s.mqtt.keepalive_s = root, KEEPALIVE_S
    s.ingest.metrics_port, s.ingest.shared_group, s.ingest.auto_register = 0, None, False
    committed, stop, ready, hold = (
        _Committed(),
        threading.Event(),
        threading.Event(),
        threading.Event(),
    )
    worker = threading.Thread(
        target=run_ingest,
        args=(s, db_url, url, stop),
        kwargs={
            "client_id": f"bench-ingest-{uuid.uuid4().hex[:8]}",
            "on_commit": committed,
            "ready": ready,
            "hold": hold,
            "session_expiry_s": 600,
        },
        name="bench-ingest",
    )
    worker.start()
    try:
        if not ready.wait(15):
            raise RuntimeError("ingest did not connect")
        time.sleep(0.3)  # the SUBACK follows the CONNACK
        yield Consumer("pipeline", root, hold, lambda: committed.readings), committed
    finally:
        stop.set()
        worker.join(60)


def p99_ms(lags_s: list[float]) -> float:
    lags = sorted(lags_s)
    return lags[int(0.99 * (len(lags) - 1))] * 1000 if lags else float("nan")


def _live(url: str, root: str, committed: _Committed) -> None:
    """Publish LIVE_MESSAGES stamped now at LIVE_RATE msg/s and wait until they are committed."""
    host, port, _tls, v5 = broker_address(url)
    pub = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"bench-live-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
    )
    pub.max_inflight_messages_set(1000)
    pub.connect(host, port, 60)
    pub.loop_start()
    target = committed.readings + LIVE_MESSAGES
    rng = random.Random(3)
    chunk, t0 = LIVE_RATE // 50, time.perf_counter()
    for i in range(0, LIVE_MESSAGES, chunk):
        for j in range(i, min(i + chunk, LIVE_MESSAGES)):
            machine, seq = f"tf-{j % MACHINES:03d}", 10_000_000 + j // MACHINES
            values: dict[str, float | None] = {
                name: round(rng.uniform(lo, hi), 2) for name, _, lo, hi in SENSORS
            }
            msg = Telemetry(SITE, machine, datetime.now(UTC), seq, values, regime=1)
            pub.publish(topic_for(SITE, machine, "telemetry", root), encode(msg), qos=1)
        time.sleep(max(0.0, t0 + (i + chunk) / LIVE_RATE - time.perf_counter()))
    _wait_count(lambda: committed.readings, target, 60)
    pub.disconnect()
    pub.loop_stop()


def compare(db_url: str, messages: list[tuple[str, int, bytes]]) -> tuple[int, int, int]:
    """(stored, lost, duplicates) of the backlog set, from the rows in the database."""
    with psycopg.connect(db_url) as conn:
        rows = reading_key_counts(conn, 10_000_000)
    stored = {(m, s): c for m, s, c in rows}
    expected = Counter((m, s) for m, s, _ in messages)
    lost = sum(1 for k in expected if k not in stored)
    duplicates = sum(c - 1 for c in stored.values() if c > 1) + sum(
        c for k, c in stored.items() if k not in expected
    )
    return sum(stored.values()), lost, duplicates


def run_bench(
    settings: Settings, db_url: str, mqtt_url: str, messages: int, *, backlog: int = BACKLOG
) -> dict[str, Any]:
    """Run the three passes in a throwaway schema of ``db_url``; return the result keys."""
    with temporary_schema(db_url, "forewarn_bench") as url:
        with psycopg.connect(url) as conn:
            upsert_registry(conn, bench_registry())
            conn.commit()
        msgs = make_messages(messages)
        log.info(
            "bench: %d messages of %d bytes on average",
            messages,
            sum(len(p) for *_, p in msgs) // len(msgs),
        )
        rounds = -(-messages // backlog)
        per_round = max(1, min(backlog, NAIVE_SAMPLE // rounds))
        with (
            naive_consumer(mqtt_url, url, per_round) as naive_c,
            bare_consumer(mqtt_url) as bare_c,
            pipeline_consumer(settings, url, mqtt_url) as (pipe_c, committed),
        ):
            drain_interleaved(mqtt_url, msgs, backlog, naive_c, bare_c, pipe_c)
            naive, bare, pipe = naive_c.rate, bare_c.rate, pipe_c.rate
            sample = naive_c.drained
            cpu = {"bare": bare_c.cpu_us_per_msg, "pipeline": pipe_c.cpu_us_per_msg}
            log.info("bench: naive %.0f, bare %.0f, pipeline %.0f msg/s", naive, bare, pipe)
            committed.record_lag = True
            pipe_c.hold.set()
            _live(mqtt_url, pipe_c.root, committed)
        p99 = p99_ms(committed.lags_s)
        log.info("bench: p99 lag %.0f ms", p99)
        stored, lost, dups = compare(url, msgs)
    return {
        "messages": messages,
        "stored": stored,
        "lost": lost,
        "duplicates": dups,
        "bare_msgs_per_s": round(bare, 1),
        "naive_msgs_per_s": round(naive, 1),
        "pipeline_msgs_per_s": round(pipe, 1),
        "pipeline_readings_per_s": round(pipe * len(SENSORS), 1),
        "ratio_vs_bare": round(pipe / bare, 3),
        "ratio_vs_naive": round(pipe / naive, 2),
        "p99_lag_ms": round(p99, 1),
        "naive_sampled": sample,
        "bare_cpu_us_per_msg": round(cpu["bare"], 1),
        "pipeline_cpu_us_per_msg": round(cpu["pipeline"], 1),
        "backlog": backlog,
        "note": f"backlogs of {backlog} queued before each timed drain, the passes alternating; "
        f"naive rate measured on {sample} messages ({per_round} per backlog) and extrapolated; "
        f"p99 lag from a live pass of {LIVE_MESSAGES} msgs at {LIVE_RATE} msg/s",
    }

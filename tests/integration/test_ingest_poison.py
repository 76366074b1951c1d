"""Poison messages (issue 18): nothing a publisher sends can stall ingest or stay unacknowledged.

Over the machine's real Mosquitto with MQTT 3.1.1, whose in-flight window is small: before the
fix, a handful of unacknowledged messages stopped the stream. Acknowledgement is checked by
resuming the same persistent session: a message left unacknowledged would be redelivered before
a sentinel published afterwards.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from forewarn.assets import MachineSpec
from forewarn.contract import Limits, Reason, encode, topic_for
from forewarn.storage.db import connect
from ingest.pipeline import Pipeline
from tests.factories import make_telemetry
from tests.integration.ingest_support import (
    SITE,
    Publisher,
    count,
    good_messages,
    running,
    seed,
    stored_keys,
    wait_until,
    worker_settings,
)

pytestmark = pytest.mark.timeout(120)
POISON_TS = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00")


@pytest.fixture
def client_id(mqtt_url: str) -> Iterator[str]:
    """A persistent-session client id whose session is removed from the shared broker after."""
    cid = f"test-poison-{uuid.uuid4().hex[:8]}"
    yield cid
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, clean_session=True,
                    protocol=mqtt.MQTTv311)  # fmt: skip
    host, port = mqtt_url.split("://", 1)[1].split(":")
    c.connect(host, int(port), 10)
    c.disconnect()


def _poison(root: str, machine: str) -> list[tuple[str, bytes]]:
    good = json.loads(encode(make_telemetry(machine, 1, site=SITE)))
    topic = topic_for(SITE, machine, "telemetry", root)
    return [(topic, json.dumps(good | {"seq": 10_000 + i, "ts": ts}).encode())
            for i, ts in enumerate(POISON_TS)]  # fmt: skip


def test_poison_timestamps_are_dead_lettered_acknowledged_and_do_not_stall(
    db_url: str, mqtt_url: str, topic_root: str, client_id: str
) -> None:
    machines = seed(db_url, machines=3)
    settings = worker_settings(topic_root)
    url = f"{mqtt_url}?protocol=3.1.1"
    poison = _poison(topic_root, machines[0]) * 15  # more than Mosquitto's in-flight window of 20
    after = good_messages(topic_root, machines, 300)
    pub = Publisher(mqtt_url)
    with running(settings, db_url, url, client_id=client_id) as worker:
        pub.publish(poison + [(t, p) for t, p, _ in after])
        wait_until(lambda: worker.messages >= len(poison) + len(after), what="all committed")
    assert sorted(stored_keys(db_url)) == sorted(k for *_, k in after)
    with psycopg.connect(db_url) as conn:
        reasons = conn.execute("select reason, count(*) from dead_letters group by 1").fetchall()
    assert reasons == [(Reason.OUT_OF_RANGE_TIMESTAMP.value, len(poison))]

    # resume the session: an unacknowledged poison message would come again before the sentinel
    sentinel = good_messages(topic_root, machines[:1], 1, first_seq=5000)
    with running(settings, db_url, url, client_id=client_id) as resumed:
        pub.publish([(t, p) for t, p, _ in sentinel])
        wait_until(lambda: resumed.messages >= 1, what="sentinel committed")
    pub.close()
    assert resumed.messages == 1
    assert count(db_url, "dead_letters") == len(poison)


class _Exploding(Mapping[str, MachineSpec]):
    """A registry whose lookup raises something no validation code expects."""

    def __getitem__(self, key: str) -> MachineSpec:
        raise OverflowError("boom")

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def get(self, key: str, default: Any = None) -> Any:
        raise OverflowError("boom")


def test_an_unexpected_error_in_validation_is_dead_lettered_as_internal_and_acked(
    db_url: str, caplog: pytest.LogCaptureFixture, allow_logged_errors: list
) -> None:
    acked: list[tuple[int, int]] = []
    done = threading.Event()

    def ack(pairs: list[tuple[int, int]]) -> None:
        acked.extend(pairs)
        done.set()

    pipeline = Pipeline(
        lambda: connect(db_url, autocommit=True),
        ack,
        specs=_Exploding(),
        limits=Limits(),
        root="forewarn/v1",
        batch_size=10,
        flush_interval_s=0.05,
        queue_max=10,
    )
    payload = encode(make_telemetry("s1-pump-000", 1))
    with caplog.at_level(logging.ERROR, logger="ingest"):
        pipeline.start()
        pipeline.intake(topic_for(SITE, "s1-pump-000", "telemetry"), payload, 7, 1)
        assert done.wait(30), "the message was never acknowledged"
        assert pipeline.drain()
    assert acked == [(7, 1)]
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("select reason, detail from dead_letters").fetchall()
    assert rows == [("internal", "OverflowError: boom")]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None  # logged once, with the traceback


def test_readyz_fails_while_taken_messages_make_no_progress(db_url: str) -> None:
    seed(db_url, machines=1)
    gate = threading.Event()

    def ack(pairs: list[tuple[int, int]]) -> None:
        gate.wait(30)  # the writer is stuck until the test lets it go

    pipeline = Pipeline(
        lambda: connect(db_url, autocommit=True),
        ack,
        specs={},
        limits=Limits(),
        root="forewarn/v1",
        batch_size=10,
        flush_interval_s=0.05,
        queue_max=10,
        stall_after_s=0.2,
    )
    pipeline.metrics.connected.set(1)
    pipeline.metrics.db_ok.set(1)
    assert pipeline.ready()
    pipeline.start()
    pipeline.intake(topic_for(SITE, "ghost", "telemetry"), b"{}", 1, 1)
    t0 = time.monotonic()
    wait_until(lambda: not pipeline.ready(), timeout_s=10, what="unready while stalled")
    assert time.monotonic() - t0 >= 0.2
    gate.set()
    wait_until(pipeline.ready, timeout_s=10, what="ready again after progress")
    assert pipeline.drain()

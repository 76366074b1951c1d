"""Ingest against the real Mosquitto and PostgreSQL: dead letters, scale-out, backpressure, DB outage."""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
import uuid
from collections import Counter
from datetime import UTC, datetime

import psycopg
import pytest

from forewarn.broker import free_port
from forewarn.contract import Reason, encode, topic_for
from forewarn.storage.schemas import schema_of, schema_url
from tests.factories import make_event, make_telemetry
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

pytestmark = pytest.mark.timeout(180)
WRITER_REASONS = {Reason.SEQ_CONFLICT, Reason.STALE_SEQ, Reason.DB_REJECTED, Reason.INTERNAL}
# given only to Sparkplug B messages (tests/integration/test_sparkplug.py exercises them)
SPARKPLUG_REASONS = {Reason.NOT_PROTOBUF, Reason.UNKNOWN_ALIAS}


def _bad_messages(root: str, machine: str) -> list[tuple[str, bytes, str]]:
    """One malformed message per reason code, as (topic, payload, expected reason)."""
    good = json.loads(encode(make_telemetry(machine, 1, site=SITE)))
    topic = topic_for(SITE, machine, "telemetry", root)

    def with_(**kw: object) -> bytes:
        return json.dumps(good | kw).encode()

    return [
        (topic, b'{"pad":"' + b"x" * 3000 + b'"}', Reason.OVERSIZED),
        (f"{root}//{machine}/telemetry", with_(), Reason.BAD_TOPIC),
        (topic, b"not json {", Reason.NOT_JSON),
        (
            topic,
            json.dumps({k: v for k, v in good.items() if k != "values"}).encode(),
            Reason.SCHEMA,
        ),
        (topic, with_(seq="7"), Reason.WRONG_TYPE),
        (topic, with_(values={"flow": 1}).replace(b"1}", b"NaN}"), Reason.NON_FINITE),
        (topic, with_(values={"flow": 1e6}), Reason.OUT_OF_BOUNDS),
        (topic, with_(values={"torque": 3.0}), Reason.UNKNOWN_SENSOR),
        (topic, with_(ts="2099-01-01T00:00:00.000Z"), Reason.OUT_OF_RANGE_TIMESTAMP),
        (
            topic_for(SITE, machine, "event", root),
            json.dumps(
                {k: v for k, v in good.items() if k != "values"} | {"event": "failure", "mode": "x"}
            ).encode(),
            Reason.UNKNOWN_FAILURE_MODE,
        ),
        (
            topic_for(SITE, "ghost", "telemetry", root),
            with_(machine="ghost"),
            Reason.UNKNOWN_MACHINE,
        ),
        (topic, with_(machine="s1-pump-001"), Reason.TOPIC_MISMATCH),
    ]


def test_malformed_flood_is_dead_lettered_while_good_messages_flow(
    db_url: str, mqtt_url: str, topic_root: str
) -> None:
    machines = seed(db_url, machines=4)
    settings = worker_settings(topic_root, max_payload_bytes=2048)
    good = good_messages(topic_root, machines, 400)
    bad = _bad_messages(topic_root, machines[0]) * 20
    # every reason code validation gives (the writer decides the others against stored data)
    assert {reason for *_, reason in bad} == set(Reason) - WRITER_REASONS - SPARKPLUG_REASONS
    events = [
        make_event(machines[1], 1000),
        make_event(machines[2], 1001, event="maintenance", kind="repair", mode=None),
    ]
    mixed: list[tuple[str, bytes]] = []
    for i, (topic, payload, _key) in enumerate(good):
        mixed.append((topic, payload))
        if i < len(bad):
            mixed.append(bad[i][:2])
    mixed += [(topic_for(SITE, e.machine, "event", topic_root), encode(e)) for e in events]

    pub = Publisher(mqtt_url)
    with running(settings, db_url, mqtt_url) as worker:
        pub.publish(mixed)
        wait_until(lambda: worker.messages >= len(mixed), what="every message committed")
    pub.close()

    assert sorted(stored_keys(db_url)) == sorted(key for *_, key in good)
    assert count(db_url, "machine_events") == 2
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("select topic, payload, reason, detail from dead_letters").fetchall()
    assert Counter(r[2] for r in rows) == Counter(str(reason) for *_, reason in bad)
    assert {(t, bytes(p)) for t, p, *_ in rows} == {(t, p) for t, p, _ in bad}
    assert all(detail for *_, detail in rows)
    assert sum(c.written.dead for c in worker.commits) == len(bad)


def test_two_workers_share_the_load_without_loss_or_duplicates(
    db_url: str, mqtt_url: str, topic_root: str
) -> None:
    machines = seed(db_url, machines=10)
    settings = worker_settings(topic_root, shared_group=f"g{uuid.uuid4().hex[:8]}")
    msgs = good_messages(topic_root, machines, 3000)
    pub = Publisher(mqtt_url)
    with running(settings, db_url, mqtt_url) as w1, running(settings, db_url, mqtt_url) as w2:
        pub.publish([(t, p) for t, p, _ in msgs])
        wait_until(lambda: w1.messages + w2.messages >= len(msgs), what="both workers done")
    pub.close()

    keys = stored_keys(db_url)
    assert len(keys) == len(msgs) and set(keys) == {k for *_, k in msgs}
    # the broker handed each message to exactly one worker, and both got a share
    assert w1.messages + w2.messages == len(msgs)
    assert min(w1.messages, w2.messages) > len(msgs) // 10


def _metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name)]
    return sum(values)


def test_backpressure_keeps_the_queue_bounded_and_the_broker_holds_the_rest(
    db_url: str, mqtt_url: str, topic_root: str
) -> None:
    machines = seed(db_url, machines=5)
    port = free_port()
    queue_max, batch = 10, 5
    settings = worker_settings(topic_root, queue_max=queue_max, batch_size=batch, metrics_port=port)
    msgs = good_messages(topic_root, machines, 600)
    pub = Publisher(mqtt_url)
    with psycopg.connect(db_url) as locker, running(settings, db_url, mqtt_url) as worker:
        locker.execute("lock table readings in exclusive mode")  # the writer stalls
        pub.publish([(t, p) for t, p, _ in msgs])
        wait_until(
            lambda: _metric(port, "forewarn_ingest_queue_depth") >= queue_max, what="full queue"
        )
        received = _metric(port, "forewarn_ingest_received_total")
        depth = _metric(port, "forewarn_ingest_queue_depth")
        ready = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).status
        # intake stopped: one batch in the writer, a full queue, one message blocked in put()
        assert depth <= queue_max
        assert received <= queue_max + batch + 1
        assert count(db_url, "readings") == 0
        assert ready == 200
        locker.rollback()  # release the lock: everything the broker held flows in
        wait_until(lambda: worker.messages >= len(msgs), what="backlog drained")
    pub.close()
    assert sorted(stored_keys(db_url)) == sorted(k for *_, k in msgs)
    assert max(c.messages for c in worker.commits) <= batch


def test_database_outage_loses_nothing(
    db_url: str, pg_server_url: str, mqtt_url: str, topic_root: str
) -> None:
    """The worker's own role loses its connections and its login; other sessions are untouched."""
    machines = seed(db_url, machines=5)
    role = f"ingest_{uuid.uuid4().hex[:10]}"
    schema = schema_of(db_url)
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f"create role {role} login")
        admin.execute(f"grant usage on schema {schema} to {role}")
        admin.execute(f"grant all on all tables in schema {schema} to {role}")
        admin.execute(f"grant all on all sequences in schema {schema} to {role}")
    role_url = schema_url(pg_server_url.replace("://", f"://{role}@", 1), schema)
    settings = worker_settings(topic_root)
    first = good_messages(topic_root, machines, 300)
    during = good_messages(topic_root, machines, 300, first_seq=1000)
    pub = Publisher(mqtt_url)
    try:
        with running(settings, role_url, mqtt_url) as worker:
            pub.publish([(t, p) for t, p, _ in first])
            wait_until(lambda: count(db_url, "readings") == len(first), what="first part stored")
            with psycopg.connect(pg_server_url, autocommit=True) as admin:
                admin.execute(f"alter role {role} nologin")
                admin.execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity where usename = %s",
                    (role,),
                )
            pub.publish([(t, p) for t, p, _ in during])
            done_before = worker.messages
            threading.Event().wait(1.5)  # the writer fails and retries with backoff meanwhile
            assert count(db_url, "readings") == len(first)
            assert worker.messages == done_before
            with psycopg.connect(pg_server_url, autocommit=True) as admin:
                admin.execute(f"alter role {role} login")
            wait_until(lambda: count(db_url, "readings") == len(first) + len(during), what="resume")
    finally:
        pub.close()
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where usename = %s", (role,)
            )
            admin.execute(f"drop owned by {role}")
            admin.execute(f"drop role {role}")
    keys = stored_keys(db_url)
    assert len(keys) == len(set(keys)) and set(keys) == {k for *_, k in first + during}


def test_unknown_machines_are_auto_registered_when_enabled(
    db_url: str, mqtt_url: str, topic_root: str
) -> None:
    seed(db_url, machines=1)
    settings = worker_settings(topic_root, auto_register=True)
    body = {
        "schema": 1,
        "machine": "new-press",
        "ts": datetime.now(UTC).isoformat(),
        "seq": 1,
        "values": {"force_kn": 12.5},
    }
    pub = Publisher(mqtt_url)
    with running(settings, db_url, mqtt_url) as worker:
        pub.publish(
            [(topic_for(SITE, "new-press", "telemetry", topic_root), json.dumps(body).encode())]
        )
        wait_until(lambda: worker.messages >= 1)
    pub.close()
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select type_id, auto_registered from machines where id = 'new-press'"
        ).fetchone()
    assert row == ("unknown", True)
    assert stored_keys(db_url) == [("new-press", 1)]
    logging.getLogger(__name__).info("auto-registered %s", row)


def test_acks_reach_the_broker_so_a_restart_gets_no_redeliveries(
    db_url: str, mqtt_url: str, topic_root: str
) -> None:
    """Committed batches are acknowledged (batched acks included): the same session resumed
    after a clean stop has nothing to redeliver."""
    machines = seed(db_url, machines=5)
    settings = worker_settings(topic_root)
    client_id = f"test-ingest-{uuid.uuid4().hex[:8]}"
    msgs = good_messages(topic_root, machines, 1000)
    pub = Publisher(mqtt_url)
    with running(settings, db_url, mqtt_url, client_id=client_id) as first:
        pub.publish([(t, p) for t, p, _ in msgs])
        wait_until(lambda: first.messages >= len(msgs), what="all committed")
    pub.close()
    # a redelivery of an unacknowledged message would come before a message published now
    sentinel = good_messages(topic_root, machines[:1], 1, first_seq=9000)
    pub = Publisher(mqtt_url)
    with running(settings, db_url, mqtt_url, client_id=client_id) as second:
        pub.publish([(t, p) for t, p, _ in sentinel])
        wait_until(lambda: second.messages >= 1, what="sentinel committed")
    pub.close()
    assert first.messages == len(msgs)
    assert second.messages == 1
    assert count(db_url, "readings") == len(msgs) + 1

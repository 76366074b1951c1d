"""(machine, seq) identifies a reading (issue 18): the writer against stored rows, the migration that
moved existing rows to the new key, and the whole path through the real broker."""

from __future__ import annotations

import json
from datetime import timedelta

import psycopg
import pytest

from forewarn.contract import Reason, encode, topic_for
from forewarn.storage.migrate import migrate
from forewarn.storage.readings import write_readings
from tests.factories import T0, make_telemetry
from tests.integration.ingest_support import (
    SITE,
    Publisher,
    good_messages,
    running,
    seed,
    wait_until,
    worker_settings,
)

pytestmark = pytest.mark.timeout(120)


def _row(seq: int, ts_s: float = 0.0, flow: float = 1.0) -> tuple:
    ts = T0 + timedelta(seconds=seq + ts_s)
    return ("m1", seq, ts, None, json.dumps({"flow": flow}))


def _stored(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("select seq, reordered from readings order by seq").fetchall()


def test_the_writer_against_what_is_stored(db: psycopg.Connection) -> None:
    with db.transaction():
        v = write_readings(db, [_row(s) for s in (1, 2, 3, 5, 100)], reorder_window=50)
    assert (v.stored, v.reordered, v.duplicates, v.rejected) == (5, 0, 0, [])
    with db.transaction():
        v = write_readings(
            db,
            [
                _row(3),  # exact redelivery: nothing, silently
                _row(5, ts_s=0.5),  # same seq, other ts
                _row(2, flow=2.0),  # same seq, other values
                _row(60),  # lower than the newest (100), within the window: stored, flagged
                _row(49),  # 51 below the newest: stale
                _row(101),
            ],
            reorder_window=50,
        )
    assert (v.stored, v.reordered, v.duplicates) == (2, 1, 1)
    assert [(i, reason) for i, reason, _ in v.rejected] == [
        (1, "seq_conflict"),
        (2, "seq_conflict"),
        (4, "stale_seq"),
    ]
    assert _stored(db) == [(1, False), (2, False), (3, False), (5, False), (60, True),
                           (100, False), (101, False)]  # fmt: skip
    assert db.execute("select max_seq from machine_seq where machine_id = 'm1'").fetchone() == (
        101,
    )


def test_migration_070_moves_rows_sharing_a_seq_to_dead_letters_without_loss(
    db: psycopg.Connection,
) -> None:
    """Rows stored under the old key (machine, seq, ts): the first received stays, the rest move."""
    seed_rows = [
        ("m1", 1, T0, 1.0),
        ("m1", 1, T0 + timedelta(seconds=5), 2.0),  # same seq, other ts: stored twice before
        ("m1", 2, T0 + timedelta(seconds=1), 3.0),
        ("m2", 7, T0, 4.0),
    ]
    with db.transaction():
        for i, (m, seq, ts, flow) in enumerate(seed_rows):
            db.execute(
                "insert into readings (machine_id, seq, ts, values, received_at)"
                " values (%s, %s, %s, %s, now() + %s * interval '1 second')",
                (m, seq, ts, json.dumps({"flow": flow}), i),
            )
        db.execute("delete from machine_seq")
        db.execute("delete from schema_migrations where name like '070%%'")
    assert migrate(db) == ["070_reading_seq.sql"]
    assert db.execute(
        "select machine_id, seq, values->>'flow' from readings order by 1, 2"
    ).fetchall() == [("m1", 1, "1.0"), ("m1", 2, "3.0"), ("m2", 7, "4.0")]
    [(topic, payload, reason)] = db.execute(
        "select topic, payload, reason from dead_letters"
    ).fetchall()
    moved = json.loads(bytes(payload))
    assert reason == "seq_conflict" and topic.endswith("/m1/telemetry")
    assert (moved["machine"], moved["seq"], moved["values"]) == ("m1", 1, {"flow": 2.0})
    assert db.execute("select machine_id, max_seq from machine_seq order by 1").fetchall() == [
        ("m1", 2),
        ("m2", 7),
    ]
    # idempotent: run again, nothing more moves
    with db.transaction():
        db.execute("delete from schema_migrations where name like '070%%'")
    migrate(db)
    assert db.execute("select count(*) from dead_letters").fetchone() == (1,)
    assert db.execute("select count(*) from readings").fetchone() == (3,)


def test_seq_semantics_through_the_broker(db_url: str, mqtt_url: str, topic_root: str) -> None:
    machines = seed(db_url, machines=2)
    m = machines[0]
    settings = worker_settings(topic_root, reorder_window=20)
    topic = topic_for(SITE, m, "telemetry", topic_root)
    first = good_messages(topic_root, machines, 100)  # seq 1..50 for each machine
    base = make_telemetry(m, 10, site=SITE)
    same = encode(base)
    other_ts = json.loads(same) | {"ts": "2026-01-01T00:09:59.000Z"}
    other_values = json.loads(same) | {"values": {"flow": 99.0}}
    late = encode(make_telemetry(m, 0, site=SITE))  # never sent, 50 below the newest: stale
    pub = Publisher(mqtt_url)
    with running(settings, db_url, mqtt_url) as worker:
        pub.publish([(t, p) for t, p, _ in first])
        wait_until(lambda: worker.messages >= len(first), what="first part")
        second = [
            (topic, same),
            (topic, json.dumps(other_ts).encode()),
            (topic, json.dumps(other_values).encode()),
            (topic, late),
            (topic, encode(make_telemetry(m, 60, site=SITE))),
            (topic, encode(make_telemetry(m, 55, site=SITE))),  # 5 below 60: stored, flagged
        ]
        pub.publish(second)
        wait_until(lambda: worker.messages >= len(first) + len(second), what="second part")
    pub.close()
    with psycopg.connect(db_url) as conn:
        reasons = conn.execute("select reason from dead_letters order by id").fetchall()
        n = conn.execute("select count(*) from readings where machine_id = %s", (m,)).fetchone()
        flagged = conn.execute("select seq from readings where reordered").fetchall()
    assert [r for (r,) in reasons] == [
        Reason.SEQ_CONFLICT.value,
        Reason.SEQ_CONFLICT.value,
        Reason.STALE_SEQ.value,
    ]
    assert n == (52,) and flagged == [(55,)]

"""What a run of the maintenance loop counts: orders sent, answered, unanswered; clock order."""

from __future__ import annotations

from datetime import timedelta

import psycopg
from psycopg.types.json import Jsonb

from forewarn.actions import AlertAction, act_on_alert
from forewarn.factory import load_factory
from forewarn.orders import command_payload
from forewarn.storage import alerts as store
from forewarn.storage import loop
from forewarn.storage.assets import upsert_registry
from tests.factories import T0


def _alert(conn: psycopg.Connection, machine: str) -> int:
    a = store.NewAlert(machine, "bearing", "high", 0.8, 20.0, 10.0, 30.0, {}, None, 0.0, "check")
    return int(store.insert_alert(conn, a, actor="system", now=T0)["id"])


def test_orders_are_counted_answered_and_resent_until_the_plant_answers(db_url: str) -> None:
    factory = load_factory(None, machines=4)
    machines = [m.id for m, _ in factory.machines()]
    sent: list[tuple[str, bytes]] = []
    with psycopg.connect(db_url) as conn:
        upsert_registry(conn, factory.registry())
        conn.execute(
            "insert into readings (machine_id, seq, ts, values) values (%s, 1, %s, '{}')",
            (machines[0], T0 + timedelta(hours=2)),
        )
        mark = loop.run_mark(conn)
        a1, a2 = _alert(conn, machines[0]), _alert(conn, machines[1])
        conn.commit()
        for aid in (a1, a2):
            act_on_alert(
                conn,
                aid,
                AlertAction("resolve", "ana", maintenance="repair", via="cli"),
                topic_root="r/v1",
                publish=lambda topic, payload: sent.append((topic, payload)),
            )
        # plant time: the resolutions are stamped with the newest reading, not the wall clock
        at = conn.execute("select max(at) from alert_transitions where to_status = 'resolved'")
        assert at.fetchone() == (T0 + timedelta(hours=2),)
        assert [(t.split("/")[-2], p) for t, p in sent] == [
            (machines[0], command_payload("repair", a1)),
            (machines[1], command_payload("repair", a2)),
        ]
        assert loop.orders(conn, mark) == (2, 0)
        assert [o["alert_id"] for o in loop.unanswered_orders(conn)] == [a1, a2]
        # the plant starts ordered work on machine 0 (alert a1)
        conn.execute(
            "insert into machine_events (machine_id, seq, ts, event, detail)"
            " values (%s, 2, %s, 'state', %s)",
            (machines[0], T0 + timedelta(hours=3), Jsonb({"state": "maintenance", "alert_id": a1})),
        )
        # machine 1 was down: its repair served the order (alert_ids)
        conn.execute(
            "insert into machine_events (machine_id, seq, ts, event, kind, detail)"
            " values (%s, 5, %s, 'maintenance', 'repair', %s)",
            (machines[1], T0 + timedelta(hours=4), Jsonb({"alert_ids": [a2]})),
        )
        assert loop.orders(conn, mark) == (2, 2)
        assert loop.unanswered_orders(conn) == []
        assert loop.ledger_entries(conn, mark) == 2
        assert loop.clock_backwards(conn) == {
            "machine_ts_backwards": 0,
            "alert_history_backwards": 0,
        }
        # a machine timestamp going backwards in sequence order is caught
        conn.execute(
            "insert into readings (machine_id, seq, ts, values) values (%s, 9, %s, '{}')",
            (machines[0], T0),
        )
        assert loop.clock_backwards(conn)["machine_ts_backwards"] == 1

"""The live ledger counts false alarms that cost somebody an inspection, not the engine's own clears."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from forewarn.storage import alerts as store
from forewarn.storage.assets import upsert_registry
from forewarn.storage.roi import ledger
from tests.factories import COSTS, T0, make_registry


def _alert(conn: psycopg.Connection, machine: str) -> int:
    new = store.NewAlert(
        machine, "bearing", "high", 0.9, 20.0, 10.0, 30.0, [], None, 60.0, "inspect"
    )
    return int(store.insert_alert(conn, new, actor="system", now=T0)["id"])


def test_engine_clears_are_not_false_alarms(db: psycopg.Connection) -> None:
    upsert_registry(db, make_registry(machines=3))
    cleared, dismissed = _alert(db, "s1-pump-000"), _alert(db, "s1-pump-001")
    later = T0 + timedelta(hours=1)
    store.transition(db, cleared, "dismissed", actor="system", reason="cleared", now=later)
    store.transition(db, dismissed, "dismissed", actor="operator-1", reason="no fault", now=later)
    db.commit()
    out = ledger(db, since=T0 - timedelta(days=1), until=T0 + timedelta(days=1))
    assert [e["alert_id"] for e in out["entries"]] == [dismissed]
    assert out["totals"]["false_alarms"] == 1
    assert out["totals"]["false_alarm_cost"] == COSTS.inspection_cost

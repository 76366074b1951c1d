"""When a retrain is due: on schedule, or earlier after drift, never in a burst."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from models.runners.model_registry import register_version
from models.runners.training import retrain_reason

NOW = datetime(2026, 3, 1, tzinfo=UTC)
HOUR = 3600.0


def _reason(db: psycopg.Connection) -> str | None:
    return retrain_reason(db, every_s=24 * HOUR, min_gap_s=HOUR, now=NOW)


def test_schedule_drift_and_min_gap(db: psycopg.Connection) -> None:
    assert _reason(db) == "schedule"  # nothing trained yet
    v = register_version(
        db, "pm-pump", b"{}", features=["a"], params={}, metrics={}, train_from=None, train_to=None
    )

    def trained_ago(hours: float) -> None:
        db.execute(
            "update model_versions set created_at = %s where id = %s",
            (NOW - timedelta(hours=hours), v.id),
        )

    def drift_ago(hours: float) -> None:
        db.execute(
            "insert into audit_log (at, actor, action, target) values (%s, 'scoring', 'drift', 'pump')",
            (NOW - timedelta(hours=hours),),
        )

    trained_ago(2)
    assert _reason(db) is None  # fresh, no drift
    drift_ago(3)  # drift before the training does not count
    assert _reason(db) is None
    drift_ago(1)
    assert _reason(db) == "drift"
    trained_ago(0.5)
    db.execute("delete from audit_log")
    drift_ago(0.1)
    assert _reason(db) is None  # within the minimum gap
    trained_ago(25)
    assert _reason(db) == "schedule"

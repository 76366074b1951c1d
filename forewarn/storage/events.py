"""Machine events read back: failures, maintenance and the lives between them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import Connection


def failures_with_downtime(conn: Connection, until: datetime) -> list[tuple[Any, ...]]:
    """(machine, ts, mode, downtime_h) of failures before ``until``, with the following repair's hours."""
    return conn.execute(
        "select f.machine_id, f.ts, f.mode,"
        " (select r.duration_s / 3600.0 from machine_events r where r.machine_id = f.machine_id"
        "   and r.event = 'maintenance' and r.kind = 'repair' and r.ts >= f.ts"
        "   order by r.ts limit 1) as downtime_h"
        " from machine_events f where f.event = 'failure' and f.ts < %s order by f.ts",
        (until,),
    ).fetchall()


def renewals(conn: Connection, until: datetime) -> list[tuple[Any, ...]]:
    """(machine, start, downtime_h) of maintenance not caused by a failure, before ``until``."""
    return conn.execute(
        "select machine_id, ts - make_interval(secs => coalesce(duration_s, 0)),"
        " duration_s / 3600.0 from machine_events where event = 'maintenance'"
        " and coalesce(detail->>'trigger', '') <> 'failure' and ts < %s order by ts",
        (until,),
    ).fetchall()


def failures_and_maintenance(
    conn: Connection, machine_ids: Sequence[str], start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    """Failures and maintenance of the machines in ``[start, end)`` (open ends: None), by time."""
    rows = conn.execute(
        "select machine_id, ts, event, mode, kind from machine_events"
        " where machine_id = any(%(ids)s) and event in ('failure', 'maintenance')"
        " and (%(start)s::timestamptz is null or ts >= %(start)s)"
        " and (%(end)s::timestamptz is null or ts < %(end)s) order by ts",
        {"ids": list(machine_ids), "start": start, "end": end},
    ).fetchall()
    return [
        {"machine_id": r[0], "ts": r[1], "event": r[2], "mode": r[3], "kind": r[4]} for r in rows
    ]


def life_events(conn: Connection, until: datetime) -> list[tuple[Any, ...]]:
    """(machine, ts, event) of every failure and maintenance up to ``until``."""
    return conn.execute(
        "select machine_id, ts, event from machine_events"
        " where event in ('failure', 'maintenance') and ts <= %s",
        (until,),
    ).fetchall()

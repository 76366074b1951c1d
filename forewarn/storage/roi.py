"""ROI storage: stored backtests (result, per-life summary, threshold), what-ifs, and the live ledger.

The live ledger is derived from alert transitions: an alert resolved with a confirmed fault
(maintenance action ``preventive`` or ``repair``, or ``detail.confirmed`` true) and no failure of
that machine within ``FAILED_ANYWAY_H`` afterwards avoided a failure: its downtime
(``repair_hours - planned_hours``) and cost (failure - inspection - planned job) are credited. A
dismissed alert, or one resolved by an inspection that confirmed nothing, costs an inspection.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from forewarn import money
from forewarn.assets import Costs

FAILED_ANYWAY_H = 24.0  # a failure this soon after a resolution means the work did not avoid it
CONFIRMING_ACTIONS = ("preventive", "repair")
SYSTEM_ACTOR = "system"  # the alert engine's own transitions (models.runners.alerting.SYSTEM_ACTOR)


def save_backtest(
    conn: Connection,
    *,
    source: str,
    window: tuple[datetime, datetime],
    params: dict[str, Any],
    costs: dict[str, Any],
    result: dict[str, Any],
    summary: dict[str, Any],
) -> int:
    """Store one backtest (inside the caller's transaction); returns its id."""
    row = conn.execute(
        "insert into roi_backtests (source, window_from, window_to, params, costs, threshold,"
        " result, summary) values (%s, %s, %s, %s, %s, %s, %s, %s) returning id",
        (
            source,
            window[0],
            window[1],
            Jsonb(params),
            Jsonb(costs),
            result.get("threshold"),
            Jsonb(result),
            Jsonb(summary),
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def latest_backtest(conn: Connection) -> dict[str, Any] | None:
    """The newest stored backtest without its per-life summary, or None when there is none."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select id, created_at, source, window_from, window_to, params, costs, threshold,"
            " result from roi_backtests order by created_at desc, id desc limit 1"
        )
        return cur.fetchone()


def latest_threshold(conn: Connection) -> float | None:
    """The alert threshold chosen by the newest backtest (None: none stored, or never alert)."""
    row = conn.execute(
        "select threshold from roi_backtests order by created_at desc, id desc limit 1"
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def latest_thresholds_by_type(conn: Connection) -> dict[str, float | None]:
    """Each machine type's best threshold in the newest backtest ({} when none is stored)."""
    row = conn.execute(
        "select result->'thresholds_by_type' from roi_backtests"
        " order by created_at desc, id desc limit 1"
    ).fetchone()
    return {} if row is None or row[0] is None else dict(row[0])


def backtest_summary(conn: Connection, *, backtest_id: int | None = None) -> dict[str, Any] | None:
    """The per-life summary of a stored backtest (the newest by default), or None when none is stored.

    Re-price it with :func:`models.roi.reprice` (the money stays in the pure model code).
    """
    sql = "select summary from roi_backtests"
    args: tuple[Any, ...] = ()
    if backtest_id is not None:
        sql += " where id = %s"
        args = (backtest_id,)
    row = conn.execute(sql + " order by created_at desc, id desc limit 1", args).fetchone()
    return None if row is None else dict(row[0])


def ledger(conn: Connection, *, since: datetime, until: datetime) -> dict[str, Any]:
    """The live ROI ledger over [since, until): one entry per resolved/dismissed alert, and totals."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select t.alert_id, t.to_status as status, t.at, a.machine_id, a.mode,"
            " m.type_id, coalesce(t.detail->>'action', '') as action,"
            " coalesce((t.detail->>'confirmed')::boolean,"
            "   t.detail->>'action' = any(%(confirming)s)) as confirmed,"
            " exists (select 1 from machine_events e where e.machine_id = a.machine_id"
            "   and e.event = 'failure' and e.ts > t.at"
            "   and e.ts <= t.at + make_interval(secs => %(anyway_s)s)) as failed_anyway,"
            " c.downtime_cost_per_h, c.repair_cost, c.planned_maintenance_cost,"
            " c.inspection_cost, c.repair_hours, c.planned_hours"
            " from alert_transitions t join alerts a on a.id = t.alert_id"
            " join machines m on m.id = a.machine_id join machine_types c on c.id = m.type_id"
            " where t.to_status in ('resolved', 'dismissed') and t.at >= %(s)s and t.at < %(u)s"
            # an alert the engine cleared by itself cost nobody an inspection
            " and t.actor <> %(system)s"
            " order by t.at, t.alert_id",
            {
                "s": since,
                "u": until,
                "confirming": list(CONFIRMING_ACTIONS),
                "anyway_s": FAILED_ANYWAY_H * 3600.0,
                "system": SYSTEM_ACTOR,
            },
        )
        rows = cur.fetchall()
    entries = []
    totals = {
        "avoided_failures": 0,
        "false_alarms": 0,
        "downtime_avoided_h": 0.0,
        "cost_avoided": 0.0,
        "false_alarm_cost": 0.0,
    }
    for r in rows:
        avoided = r["status"] == "resolved" and bool(r["confirmed"]) and not r["failed_anyway"]
        e = {
            "alert_id": r["alert_id"],
            "at": r["at"],
            "machine_id": r["machine_id"],
            "type_id": r["type_id"],
            "mode": r["mode"],
            "status": r["status"],
            "action": r["action"],
            "outcome": "avoided" if avoided else "false_alarm",
            "downtime_avoided_h": 0.0,
            "cost_avoided": 0.0,
            "cost": 0.0,
        }
        costs = Costs(**{f: float(r[f]) for f in money.COST_FIELDS})
        if avoided:
            e["downtime_avoided_h"] = money.downtime_avoided_h(costs)
            e["cost_avoided"] = money.avoided_failure(costs)
            totals["avoided_failures"] += 1
            totals["downtime_avoided_h"] += e["downtime_avoided_h"]
            totals["cost_avoided"] += e["cost_avoided"]
        else:
            e["cost"] = money.inspection(costs)
            totals["false_alarms"] += 1
            totals["false_alarm_cost"] += e["cost"]
        entries.append(e)
    totals["net_savings"] = totals["cost_avoided"] - totals["false_alarm_cost"]
    return {"since": since, "until": until, "totals": totals, "entries": entries}


def roi_overview(conn: Connection, *, since: datetime, until: datetime) -> dict[str, Any]:
    """What the API's ROI summary and the dashboard's ROI page show: ledger totals + latest backtest."""
    led = ledger(conn, since=since, until=until)
    return {"ledger": led["totals"], "backtest": latest_backtest(conn)}


def champion_prediction_times(
    conn: Connection, *, since: datetime, until: datetime
) -> list[tuple[str, datetime]]:
    """(machine, ts) of every champion prediction in [since, until): the live scoring cadence."""
    rows = conn.execute(
        "select machine_id, ts from predictions where role = 'champion'"
        " and ts >= %s and ts < %s order by machine_id, ts",
        (since, until),
    ).fetchall()
    return [(str(r[0]), r[1]) for r in rows]


def plant_currency(conn: Connection) -> str | None:
    """The currency most machine types' costs are in (None: none recorded)."""
    row = conn.execute(
        "select currency from machine_types where currency is not null"
        " group by currency order by count(*) desc, currency limit 1"
    ).fetchone()
    return None if row is None else str(row[0])


def backtest_record(conn: Connection, backtest_id: int) -> dict[str, Any] | None:
    """A stored backtest as :func:`save_backtest`'s keyword arguments, or None."""
    row = conn.execute(
        "select source, window_from, window_to, params, costs, result, summary"
        " from roi_backtests where id = %s",
        (backtest_id,),
    ).fetchone()
    if row is None:
        return None
    return {
        "source": row[0],
        "window": (row[1], row[2]),
        "params": row[3],
        "costs": row[4],
        "result": row[5],
        "summary": row[6],
    }

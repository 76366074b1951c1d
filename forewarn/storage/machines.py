"""Read queries behind the machines, readings and predictions API: latest risk, downsampled series."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.rows import dict_row

from forewarn import money
from forewarn.assets import Costs

BUCKET_ORIGIN = "2000-01-01T00:00:00Z"
_RISK = (
    "left join lateral (select ts, failure_prob, rul_h, rul_low_h, rul_high_h, mode, data_quality,"
    " model_version_id from predictions where machine_id = m.id and role = 'champion'"
    " order by ts desc limit 1) p on true"
)
_RISK_COLS = (
    "p.ts as risk_ts, p.failure_prob, p.rul_h, p.rul_low_h, p.rul_high_h, p.mode as risk_mode,"
    " p.data_quality, p.model_version_id"
)


def _all(conn: Connection, sql: str, args: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def list_machines_query(
    *,
    site_id: str | None = None,
    type_id: str | None = None,
    order: str = "id",
    limit: int = 500,
    offset: int = 0,
) -> tuple[str, dict[str, Any]]:
    """SQL whose one value is the JSON array of machines with latest risk and open-alert count."""
    order_by = {"id": "m.id", "risk": "p.failure_prob desc nulls last, m.id"}[order]
    sql = (
        "select coalesce(json_agg(json_build_object('id', q.id, 'site_id', q.site_id,"
        " 'line_id', q.line_id, 'type_id', q.type_id, 'risk', case when q.risk_ts is null then null"
        " else json_build_object('ts', q.risk_ts, 'failure_prob', q.failure_prob, 'rul_h', q.rul_h,"
        " 'rul_low_h', q.rul_low_h, 'rul_high_h', q.rul_high_h, 'mode', q.risk_mode,"
        " 'data_quality', q.data_quality, 'model_version_id', q.model_version_id) end,"
        " 'open_alerts', q.open_alerts) order by q.n), '[]')::text from ("
        f" select m.id, m.site_id, m.line_id, m.type_id, {_RISK_COLS},"
        "  (select count(*) from alerts a where a.machine_id = m.id"
        "   and a.status in ('open', 'acknowledged')) as open_alerts,"
        f"  row_number() over (order by {order_by}) as n"
        f" from machines m {_RISK}"
        " where (%(site)s::text is null or m.site_id = %(site)s)"
        " and (%(type)s::text is null or m.type_id = %(type)s)"
        f" order by {order_by} limit %(limit)s offset %(offset)s) q"
    )
    return sql, {"site": site_id, "type": type_id, "limit": limit, "offset": offset}


def list_machines_json(conn: Connection, **filters: Any) -> str:
    """Machines with their latest champion risk (null when unscored) and open alerts, as JSON."""
    row = conn.execute(*list_machines_query(**filters)).fetchone()
    assert row is not None
    return str(row[0])


async def list_machines_json_async(conn: AsyncConnection, **filters: Any) -> str:
    """:func:`list_machines_json` on an async connection."""
    cur = await conn.execute(*list_machines_query(**filters))
    row = await cur.fetchone()
    assert row is not None
    return str(row[0])


def machine_detail(conn: Connection, machine_id: str) -> dict[str, Any] | None:
    """One machine with its type, sensors, latest reading, latest risk and open alerts."""
    rows = _all(
        conn,
        f"select m.id, m.site_id, m.line_id, m.type_id, t.name as type_name, t.sensors,"
        f" t.failure_modes, m.installed_at, {_RISK_COLS},"
        " r.ts as reading_ts, r.values as reading_values"
        f" from machines m join machine_types t on t.id = m.type_id {_RISK}"
        " left join lateral (select ts, values from readings where machine_id = m.id"
        "   order by ts desc limit 1) r on true"
        " where m.id = %s",
        (machine_id,),
    )
    if not rows:
        return None
    detail = rows[0]
    detail["open_alert_ids"] = [
        r["id"]
        for r in _all(
            conn,
            "select id from alerts where machine_id = %s and status in ('open', 'acknowledged')"
            " order by id",
            (machine_id,),
        )
    ]
    return detail


def machine_exists(conn: Connection, machine_id: str) -> bool:
    return (
        conn.execute("select 1 from machines where id = %s", (machine_id,)).fetchone() is not None
    )


def downsampled_readings(
    conn: Connection,
    machine_id: str,
    *,
    start: datetime,
    end: datetime,
    bucket_s: int,
    sensors: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Per time bucket and numeric sensor: avg, min, max and count (date_bin: plain SQL, any PG 14+)."""
    return _all(
        conn,
        "select date_bin(make_interval(secs => %(b)s), r.ts, %(origin)s::timestamptz) as ts,"
        " kv.key as sensor, avg((kv.value)::float8) as avg, min((kv.value)::float8) as min,"
        " max((kv.value)::float8) as max, count(*) as count"
        " from readings r cross join lateral jsonb_each(r.values) kv"
        " where r.machine_id = %(m)s and r.ts >= %(start)s and r.ts < %(end)s"
        " and jsonb_typeof(kv.value) = 'number'"
        " and (%(sensors)s::text[] is null or kv.key = any(%(sensors)s::text[]))"
        " group by 1, 2 order by 1, 2",
        {
            "b": bucket_s,
            "origin": BUCKET_ORIGIN,
            "m": machine_id,
            "start": start,
            "end": end,
            "sensors": sensors or None,
        },
    )


def predictions(
    conn: Connection,
    *,
    machine_id: str | None,
    role: str | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Predictions newest first, filtered."""
    return _all(
        conn,
        "select machine_id, ts, role, model_version_id, failure_prob, rul_h, rul_low_h, rul_high_h,"
        " anomaly, mode, contributions, data_quality, created_at from predictions"
        " where (%(m)s::text is null or machine_id = %(m)s)"
        " and (%(role)s::text is null or role = %(role)s)"
        " and (%(start)s::timestamptz is null or ts >= %(start)s)"
        " and (%(end)s::timestamptz is null or ts < %(end)s)"
        " order by ts desc limit %(limit)s",
        {"m": machine_id, "role": role, "start": start, "end": end, "limit": limit},
    )


def roi_summary(conn: Connection, *, since: datetime, until: datetime) -> dict[str, Any]:
    """Counts and money over a window: alerts acted on, failures suffered, estimated savings.

    A resolved alert is credited with what a true alert saves (:func:`forewarn.money.avoided_failure`)
    on its machine type; a dismissed alert costs an inspection; failures cost downtime and repair.
    The SQL counts per machine type; the money comes from :mod:`forewarn.money`.
    """
    cost_cols = ", ".join(f"t.{f}" for f in money.COST_FIELDS)
    counts = _all(
        conn,
        "with a as (select a.status, m.type_id from alerts a join machines m on m.id = a.machine_id"
        "   where a.updated_at >= %(s)s and a.updated_at < %(u)s),"
        " f as (select m.type_id from machine_events e join machines m on m.id = e.machine_id"
        "   where e.event = 'failure' and e.ts >= %(s)s and e.ts < %(u)s)"
        f" select t.id, {cost_cols},"
        " (select count(*) from a where a.type_id = t.id and a.status = 'resolved') as resolved,"
        " (select count(*) from a where a.type_id = t.id and a.status = 'dismissed') as dismissed,"
        " (select count(*) from f where f.type_id = t.id) as failures"
        " from machine_types t",
        {"s": since, "u": until},
    )
    totals = _all(
        conn,
        "select"
        " (select count(*) from alerts where created_at >= %(s)s and created_at < %(u)s) as raised,"
        " (select count(*) from alerts where status in ('open', 'acknowledged')) as open_now,"
        " (select count(*) from machine_events where event = 'maintenance'"
        "   and ts >= %(s)s and ts < %(u)s) as maintenance",
        {"s": since, "u": until},
    )[0]
    out = {**totals, "resolved": 0, "dismissed": 0, "failures": 0}
    failure_cost = estimated = 0.0
    for r in counts:
        c = Costs(**{f: float(r[f]) for f in money.COST_FIELDS})
        out["resolved"] += r["resolved"]
        out["dismissed"] += r["dismissed"]
        out["failures"] += r["failures"]
        failure_cost += r["failures"] * money.unplanned_failure(c)
        estimated += r["resolved"] * money.avoided_failure(c) - r["dismissed"] * money.inspection(c)
    out["failure_cost"] = failure_cost
    out["estimated_savings"] = estimated
    return out

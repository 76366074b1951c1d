"""Read queries for fleet views (dashboard, reports): health, roll-ups, timelines, downtime, models.

Sensor roll-ups come from ``forewarn.storage.rollups``, model versions from
``forewarn.storage.model_registry.list_versions``, alerts from ``forewarn.storage.alerts.list_alerts``;
this module holds the queries nobody else had.

Plain functions taking a connection first and returning rows as dicts. Time is passed in, never read
from the clock here. Time series are bucketed with ``date_bin`` (PostgreSQL 14+), which works the
same on plain PostgreSQL and on TimescaleDB hypertables, so there is one SQL path for both.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row

from forewarn import money

# Buckets are aligned to this origin so that repeated loads return the same bucket edges.
BUCKET_ORIGIN = "2000-01-01T00:00:00Z"


def _rows(
    conn: Connection, query: str, args: Sequence[Any] | dict[str, Any] = ()
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, args)  # type: ignore[arg-type]
        return cur.fetchall()


def fleet_health(conn: Connection, *, role: str = "champion") -> list[dict[str, Any]]:
    """One row per machine: registry data, its latest prediction, open alerts and last reading time."""
    return _rows(
        conn,
        """
        select m.id as machine_id, m.site_id, s.name as site_name, m.line_id, m.type_id,
               t.name as type_name,
               p.ts as predicted_at, p.failure_prob, p.rul_h, p.rul_low_h, p.rul_high_h,
               p.anomaly, p.mode as predicted_mode, p.data_quality,
               coalesce(a.open_alerts, 0) as open_alerts, a.top_severity,
               r.ts as last_reading_at
        from machines m
        join sites s on s.id = m.site_id
        join machine_types t on t.id = m.type_id
        left join lateral (
            select ts, failure_prob, rul_h, rul_low_h, rul_high_h, anomaly, mode, data_quality
            from predictions
            where machine_id = m.id and role = %(role)s
            order by ts desc limit 1
        ) p on true
        left join lateral (
            select count(*) as open_alerts,
                   (array_agg(severity order by case severity when 'critical' then 4
                        when 'high' then 3 when 'medium' then 2 else 1 end desc))[1] as top_severity
            from alerts
            where machine_id = m.id and status in ('open', 'acknowledged')
        ) a on true
        left join lateral (
            select ts from readings where machine_id = m.id order by ts desc limit 1
        ) r on true
        order by p.failure_prob desc nulls last, m.id
        """,
        {"role": role},
    )


def machine_info(conn: Connection, machine_id: str) -> dict[str, Any] | None:
    """The machine with its site, line and type (sensors and costs), or None."""
    rows = _rows(
        conn,
        "select m.id as machine_id, m.site_id, s.name as site_name, m.line_id, l.name as line_name,"
        " m.type_id, t.name as type_name, t.sensors, t.failure_modes, t.downtime_cost_per_h,"
        " m.installed_at"
        " from machines m join sites s on s.id = m.site_id"
        " join machine_types t on t.id = m.type_id left join lines l on l.id = m.line_id"
        " where m.id = %s",
        (machine_id,),
    )
    return rows[0] if rows else None


def prediction_history(
    conn: Connection,
    machine_id: str,
    *,
    since: datetime,
    until: datetime,
    bucket: timedelta,
    role: str = "champion",
) -> list[dict[str, Any]]:
    """Bucketed predictions of one machine: failure probability (mean, max) and the RUL band."""
    return _rows(
        conn,
        """
        select date_bin(%(bucket)s, ts, %(origin)s::timestamptz) as bucket,
               avg(failure_prob) as failure_prob, max(failure_prob) as failure_prob_max,
               avg(rul_h) as rul_h, min(rul_low_h) as rul_low_h, max(rul_high_h) as rul_high_h,
               avg(anomaly) as anomaly, count(*) as n
        from predictions
        where machine_id = %(machine)s and role = %(role)s and ts >= %(since)s and ts < %(until)s
        group by 1
        order by 1
        """,
        {
            "bucket": bucket,
            "origin": BUCKET_ORIGIN,
            "machine": machine_id,
            "role": role,
            "since": since,
            "until": until,
        },
    )


def latest_prediction(
    conn: Connection, machine_id: str, *, role: str = "champion"
) -> dict[str, Any] | None:
    """The newest prediction of one machine, with its contributions, or None."""
    rows = _rows(
        conn,
        "select machine_id, ts, role, model_version_id, failure_prob, rul_h, rul_low_h, rul_high_h,"
        " anomaly, mode, contributions, data_quality from predictions"
        " where machine_id = %s and role = %s order by ts desc limit 1",
        (machine_id, role),
    )
    return rows[0] if rows else None


def machine_timeline(
    conn: Connection, machine_id: str, *, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Failures, maintenance and alerts of one machine in [since, until), oldest first.

    Columns: ts, kind ('failure' | 'maintenance' | 'alert'), label, status, duration_h.
    """
    return _rows(
        conn,
        """
        select ts, event as kind, coalesce(mode, kind, event) as label, null::text as status,
               duration_s / 3600.0 as duration_h
        from machine_events
        where machine_id = %(machine)s and event in ('failure', 'maintenance')
          and ts >= %(since)s and ts < %(until)s
        union all
        select created_at, 'alert', mode || ' (' || severity || ')', status, null
        from alerts
        where machine_id = %(machine)s and created_at >= %(since)s and created_at < %(until)s
        order by 1
        """,
        {"machine": machine_id, "since": since, "until": until},
    )


def downtime_by_machine(
    conn: Connection, *, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Downtime per machine and cause in [since, until).

    A failure's cause is its failure mode, maintenance's its kind. An event without a duration
    counts the machine type's repair (failure) or planned (maintenance) hours.
    Columns: machine_id, site_id, type_id, event, cause, events, downtime_h, downtime_cost.
    """
    rows = _rows(
        conn,
        """
        select e.machine_id, m.site_id, m.type_id, e.event,
               coalesce(e.mode, e.kind, e.event) as cause, count(*) as events,
               sum(coalesce(e.duration_s / 3600.0,
                   case e.event when 'failure' then t.repair_hours else t.planned_hours end))
                   as downtime_h,
               max(t.downtime_cost_per_h) as downtime_cost_per_h
        from machine_events e
        join machines m on m.id = e.machine_id
        join machine_types t on t.id = m.type_id
        where e.event in ('failure', 'maintenance') and e.ts >= %(since)s and e.ts < %(until)s
        group by 1, 2, 3, 4, 5
        order by downtime_h desc, 1
        """,
        {"since": since, "until": until},
    )
    for r in rows:  # money is priced in forewarn.money, not in SQL
        per_h = r.pop("downtime_cost_per_h")
        r["downtime_cost"] = money.downtime(float(r["downtime_h"]), float(per_h))
    return rows


def daily_events(conn: Connection, *, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Failures and maintenance per day in [since, until): day, event, events, downtime_h."""
    return _rows(
        conn,
        """
        select date_trunc('day', e.ts) as day, e.event, count(*) as events,
               sum(coalesce(e.duration_s / 3600.0,
                   case e.event when 'failure' then t.repair_hours else t.planned_hours end))
                   as downtime_h
        from machine_events e
        join machines m on m.id = e.machine_id
        join machine_types t on t.id = m.type_id
        where e.event in ('failure', 'maintenance') and e.ts >= %(since)s and e.ts < %(until)s
        group by 1, 2
        order by 1, 2
        """,
        {"since": since, "until": until},
    )


def alert_counts(conn: Connection) -> dict[str, int]:
    """Number of alerts per status."""
    return {
        str(r[0]): int(r[1])
        for r in conn.execute("select status, count(*) from alerts group by status")
    }


def alias_history(conn: Connection, *, limit: int = 50) -> list[dict[str, Any]]:
    """Recent promotions and rollbacks, newest first."""
    return _rows(
        conn,
        "select h.at, h.name, h.alias, v.version, pv.version as previous_version, h.actor"
        " from model_alias_history h"
        " left join model_versions v on v.id = h.version_id"
        " left join model_versions pv on pv.id = h.previous_version_id"
        " order by h.at desc, h.id desc limit %s",
        (limit,),
    )


def role_comparison(
    conn: Connection, *, since: datetime, until: datetime, bucket: timedelta
) -> list[dict[str, Any]]:
    """Champion vs challenger (and online) over time: mean failure probability and count per bucket."""
    return _rows(
        conn,
        """
        select date_bin(%(bucket)s, ts, %(origin)s::timestamptz) as bucket, role,
               avg(failure_prob) as failure_prob, avg(rul_h) as rul_h, count(*) as n
        from predictions
        where ts >= %(since)s and ts < %(until)s
        group by 1, 2
        order by 1, 2
        """,
        {"bucket": bucket, "origin": BUCKET_ORIGIN, "since": since, "until": until},
    )


def drift_events(conn: Connection, *, since: datetime, limit: int = 200) -> list[dict[str, Any]]:
    """Drift detections recorded in the audit log (action ``drift...``), newest first."""
    return _rows(
        conn,
        "select at, actor, action, target, detail from audit_log"
        " where action like 'drift%%' and at >= %s order by at desc, id desc limit %s",
        (since, limit),
    )


def ingest_pulse(conn: Connection, *, window_s: float) -> dict[str, Any]:
    """What ingest stored and dead-lettered in the last ``window_s`` wall seconds (by receipt time,
    which the BRIN index on readings.received_at serves), and whether anything was ever stored."""
    row = conn.execute(
        "select (select count(*) from readings"
        "   where received_at > now() - make_interval(secs => %(w)s)),"
        " (select count(*) from dead_letters"
        "   where received_at > now() - make_interval(secs => %(w)s)),"
        " exists (select 1 from readings)",
        {"w": window_s},
    ).fetchone()
    assert row is not None
    return {"stored": int(row[0]), "dead_lettered": int(row[1]), "any_data": bool(row[2])}


def machine_orders(conn: Connection, machine_id: str, *, limit: int = 5) -> list[dict[str, Any]]:
    """The machine's latest maintenance orders (alert resolutions) and how the plant answered.

    Columns: alert_id, action, actor, ordered_at, started_at (ordered work began, or the machine
    was already down), done_at and done_kind (the plant's maintenance event), all plant time.
    """
    return _rows(
        conn,
        """
        select t.alert_id, t.detail->>'action' as action, t.actor, t.at as ordered_at,
               (select min(e.ts) from machine_events e where e.machine_id = a.machine_id
                  and e.seq > 0 and e.event = 'state' and (e.detail->>'alert_id')::bigint = a.id)
                 as started_at,
               d.ts as done_at, d.kind as done_kind
        from alert_transitions t join alerts a on a.id = t.alert_id
        left join lateral (select e.ts, e.kind from machine_events e
          where e.machine_id = a.machine_id and e.seq > 0 and e.event = 'maintenance'
            and ((e.detail->>'alert_id')::bigint = a.id
                 or coalesce(e.detail->'alert_ids', '[]'::jsonb) @> to_jsonb(a.id))
          order by e.ts limit 1) d on true
        where a.machine_id = %(machine)s and t.to_status = 'resolved'
        order by t.at desc, t.id desc limit %(limit)s
        """,
        {"machine": machine_id, "limit": limit},
    )

"""What the maintenance loop did in one run: orders sent and obeyed, alerts vs. failures, clock order.

A run is everything after a :func:`run_mark` (the newest alert and transition ids at its start).
Plant events are the ones a machine sent (``seq > 0``); an alert resolution's own maintenance
record has a negative seq.
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection

# alert ids a plant event answered: ordered work starts with detail.alert_id, work that served
# orders arriving while the machine was down lists them in detail.alert_ids
_OBEYED = (
    "select (e.detail->>'alert_id')::bigint as alert_id from machine_events e"
    " where e.seq > 0 and e.detail ? 'alert_id'"
    " union select jsonb_array_elements_text(e.detail->'alert_ids')::bigint from machine_events e"
    " where e.seq > 0 and e.detail ? 'alert_ids'"
)


def run_mark(conn: Connection) -> dict[str, int]:
    """The newest alert and transition ids: what a run counts from."""
    row = conn.execute(
        "select coalesce((select max(id) from alerts), 0),"
        " coalesce((select max(id) from alert_transitions), 0)"
    ).fetchone()
    assert row is not None
    return {"alert_id": int(row[0]), "transition_id": int(row[1])}


def orders(conn: Connection, mark: dict[str, int]) -> tuple[int, int]:
    """(orders sent, orders obeyed) in the run: each resolution sends one maintenance order; it is
    obeyed when a plant event answers its alert id."""
    row = conn.execute(
        "with sent as (select distinct alert_id from alert_transitions"
        "   where id > %s and to_status = 'resolved')"
        f" select count(*), count(*) filter (where alert_id in ({_OBEYED})) from sent",
        (mark["transition_id"],),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def alerts_after_failure(conn: Connection, mark: dict[str, int]) -> int:
    """Alerts of the run raised after the failure they are about: a failure of the machine
    between the alert's data (created_at - inputs_age_s) and strictly before its creation."""
    row = conn.execute(
        "select count(*) from alerts a where a.id > %s and exists (select 1 from machine_events e"
        "  where e.machine_id = a.machine_id and e.seq > 0 and e.event = 'failure'"
        "  and e.ts >= a.created_at - make_interval(secs => coalesce(a.inputs_age_s, 0))"
        "  and e.ts < a.created_at)",
        (mark["alert_id"],),
    ).fetchone()
    assert row is not None
    return int(row[0])


def open_alerts_on_failed_machines(conn: Connection) -> int:
    """Active alerts whose machine is down, or failed after the alert's data."""
    row = conn.execute(
        "select count(*) from alerts a where a.status in ('open', 'acknowledged') and ("
        " exists (select 1 from machine_events e where e.machine_id = a.machine_id and e.seq > 0"
        "   and e.event = 'failure'"
        "   and e.ts >= a.created_at - make_interval(secs => coalesce(a.inputs_age_s, 0)))"
        " or (select e.detail->>'state' from machine_events e where e.machine_id = a.machine_id"
        "   and e.seq > 0 and e.event = 'state' order by e.ts desc, e.seq desc limit 1) = 'down')"
    ).fetchone()
    assert row is not None
    return int(row[0])


def ledger_entries(conn: Connection, mark: dict[str, int]) -> int:
    """Entries the run added to the live ROI ledger (a person's resolution or dismissal)."""
    from forewarn.storage.roi import SYSTEM_ACTOR

    row = conn.execute(
        "select count(*) from alert_transitions where id > %s"
        " and to_status in ('resolved', 'dismissed') and actor <> %s",
        (mark["transition_id"], SYSTEM_ACTOR),
    ).fetchone()
    assert row is not None
    return int(row[0])


def clock_backwards(conn: Connection) -> dict[str, int]:
    """Stored timestamps that went backwards: per machine in sequence order (readings and plant
    events), and per alert in transition order. All zero when the plant clock is monotonic."""
    row = conn.execute(
        "select"
        " (select count(*) from (select ts < lag(ts) over (partition by machine_id order by seq)"
        "   as back from (select machine_id, seq, ts from readings union all"
        "   select machine_id, seq, ts from machine_events where seq > 0) m) r where back),"
        " (select count(*) from (select at < lag(at) over (partition by alert_id order by id)"
        "   as back from alert_transitions) t where back)"
    ).fetchone()
    assert row is not None
    return {"machine_ts_backwards": int(row[0]), "alert_history_backwards": int(row[1])}


def loop_summary(conn: Connection, mark: dict[str, int]) -> dict[str, Any]:
    """The loop keys of the demo's headless summary."""
    sent, obeyed = orders(conn, mark)
    back = clock_backwards(conn)
    return {
        "orders_sent": sent,
        "orders_obeyed": obeyed,
        "alerts_after_failure": alerts_after_failure(conn, mark),
        "open_alerts_on_failed_machines": open_alerts_on_failed_machines(conn),
        "ledger_entries": ledger_entries(conn, mark),
        "clock_monotonic": not any(back.values()),
        **back,
    }


def unanswered_orders(conn: Connection, *, limit: int = 1000) -> list[dict[str, Any]]:
    """Resolutions whose maintenance order no plant event answered yet (e.g. resolved while the
    plant was stopped): alert_id, machine_id, site_id, action, oldest first."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select distinct on (t.alert_id) t.alert_id, a.machine_id, m.site_id,"
            " t.detail->>'action' as action from alert_transitions t"
            " join alerts a on a.id = t.alert_id join machines m on m.id = a.machine_id"
            " where t.to_status = 'resolved' and t.detail ? 'action'"
            f" and t.alert_id not in ({_OBEYED}) order by t.alert_id limit %s",
            (limit,),
        )
        return cur.fetchall()

"""Alert storage: raise, transition, escalate, poll by change cursor, hysteresis state, thresholds.

Every function that writes an alert first takes the next value of the single-row change counter
(``alert_change_counter``). That row lock is held until commit, so alert writers commit one after
another in change_seq order, and a poller reading ``change_seq > cursor`` can never later see a row
whose change_seq is at or below a cursor it already returned: no gap and no repeat. Taking the
counter *before* any alert row lock keeps the lock order the same everywhere (no deadlock).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from forewarn.errors import Conflict, NotFound
from forewarn.storage.notifications import enqueue_notifications
from forewarn.storage.webhooks import enqueue_deliveries

ALERT_COLUMNS = (
    "id, machine_id, mode, status, severity, failure_prob, ttf_h, ttf_low_h, ttf_high_h,"
    " contributions, model_version_id, inputs_age_s, recommended_action, created_at, updated_at,"
    " escalated_at, version, change_seq, policy_version, raised_by_ts"
)
# Who ends an alert: a person resolves or dismisses it; the engine clears it (the risk went away,
# or the machine was maintained) or closes it as failed (the predicted failure happened).
ALLOWED = {
    "open": {"acknowledged", "resolved", "dismissed", "cleared", "failed"},
    "acknowledged": {"resolved", "dismissed", "cleared", "failed"},
    "resolved": set(),
    "dismissed": set(),
    "cleared": set(),
    "failed": set(),
}
ACTIVE_STATUSES = ("open", "acknowledged")
CLOSED_STATUSES = ("resolved", "dismissed", "cleared", "failed")
EVENT_OF_STATUS = {
    "open": "alert.raised",
    "acknowledged": "alert.acknowledged",
    "resolved": "alert.resolved",
    "dismissed": "alert.dismissed",
    "cleared": "alert.cleared",
    "failed": "alert.failed",
}


def next_change_seq(conn: Connection) -> int:
    """Lock the change counter (until commit) and take its next value."""
    row = conn.execute(
        "update alert_change_counter set seq = seq + 1 where id = 1 returning seq"
    ).fetchone()
    assert row is not None, "migration 020 seeds the counter row"
    return int(row[0])


@dataclass(frozen=True, slots=True)
class NewAlert:
    machine_id: str
    mode: str
    severity: str
    failure_prob: float
    ttf_h: float | None
    ttf_low_h: float | None
    ttf_high_h: float | None
    contributions: Any
    model_version_id: int | None
    inputs_age_s: float | None
    recommended_action: str
    policy_version: int | None = None  # the alert policy version that raised it
    raised_by_ts: datetime | None = None  # time of the prediction that raised it


def open_alerts(conn: Connection, machine_ids: Sequence[str]) -> dict[tuple[str, str], int]:
    """(machine, mode) -> id of the open or acknowledged alert, for the given machines."""
    rows = conn.execute(
        "select machine_id, mode, id from alerts"
        " where status in ('open', 'acknowledged') and machine_id = any(%s)",
        (list(machine_ids),),
    ).fetchall()
    return {(r[0], r[1]): int(r[2]) for r in rows}


def _fetch(conn: Connection, alert_id: int, *, lock: bool = False) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"select {ALERT_COLUMNS} from alerts where id = %s" + (" for update" if lock else ""),
            (alert_id,),
        )
        return cur.fetchone()


def log_change(
    conn: Connection,
    alert: dict[str, Any],
    from_status: str | None,
    actor: str,
    reason: str,
    detail: dict[str, Any],
    now: datetime,
    event: str,
) -> None:
    conn.execute(
        "insert into alert_transitions (alert_id, from_status, to_status, actor, reason, detail, at)"
        " values (%s, %s, %s, %s, %s, %s, %s)",
        (alert["id"], from_status, alert["status"], actor, reason, Jsonb(detail), now),
    )
    enqueue_deliveries(conn, event, alert["id"], {"event": event, "alert": jsonable(alert)})
    enqueue_notifications(conn, event, alert, now=now, actor=actor, reason=reason)


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """A row with datetimes as ISO strings (for webhook payloads and idempotency records)."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def insert_alert(conn: Connection, a: NewAlert, *, actor: str, now: datetime) -> dict[str, Any]:
    """Create an open alert (the caller checked de-duplication; the unique index enforces it)."""
    seq = next_change_seq(conn)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "insert into alerts (machine_id, mode, status, severity, failure_prob, ttf_h, ttf_low_h,"
            " ttf_high_h, contributions, model_version_id, inputs_age_s, recommended_action,"
            " created_at, updated_at, change_seq, policy_version, raised_by_ts)"
            " values (%s, %s, 'open', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            f" returning {ALERT_COLUMNS}",
            (
                a.machine_id,
                a.mode,
                a.severity,
                a.failure_prob,
                a.ttf_h,
                a.ttf_low_h,
                a.ttf_high_h,
                Jsonb(a.contributions),
                a.model_version_id,
                a.inputs_age_s,
                a.recommended_action,
                now,
                now,
                seq,
                a.policy_version,
                a.raised_by_ts,
            ),
        )
        alert = cur.fetchone()
    assert alert is not None
    detail = {"failure_prob": a.failure_prob, "policy_version": a.policy_version}
    log_change(conn, alert, None, actor, "raised", detail, now, "alert.raised")
    return alert


def refresh_alert(
    conn: Connection, alert_id: int, a: NewAlert, *, actor: str, now: datetime
) -> bool:
    """Update an open alert with a newer prediction when its severity changed; True if written.

    Unchanged severity writes nothing, so pollers are not flooded by every new score.
    """
    current = _fetch(conn, alert_id)
    if current is None or current["severity"] == a.severity:
        return False
    seq = next_change_seq(conn)
    current = _fetch(conn, alert_id, lock=True)
    if current is None or current["status"] not in ("open", "acknowledged"):
        return False
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "update alerts set severity = %s, failure_prob = %s, ttf_h = %s, ttf_low_h = %s,"
            " ttf_high_h = %s, contributions = %s, model_version_id = %s, inputs_age_s = %s,"
            " recommended_action = %s, updated_at = %s, version = version + 1, change_seq = %s"
            f" where id = %s returning {ALERT_COLUMNS}",
            (
                a.severity,
                a.failure_prob,
                a.ttf_h,
                a.ttf_low_h,
                a.ttf_high_h,
                Jsonb(a.contributions),
                a.model_version_id,
                a.inputs_age_s,
                a.recommended_action,
                now,
                seq,
                alert_id,
            ),
        )
        alert = cur.fetchone()
    assert alert is not None
    detail = {"severity_from": current["severity"], "severity_to": a.severity}
    log_change(
        conn, alert, current["status"], actor, "severity changed", detail, now, "alert.updated"
    )
    return True


def transition(
    conn: Connection,
    alert_id: int,
    to_status: str,
    *,
    actor: str,
    reason: str,
    now: datetime,
    detail: dict[str, Any] | None = None,
    expected_version: int | None = None,
) -> tuple[dict[str, Any], bool]:
    """Move an alert to ``to_status``; returns (alert, changed).

    Asking for the status the alert already has is a no-op (idempotent). A stale
    ``expected_version`` or a transition the lifecycle forbids raises Conflict.
    """
    seq = next_change_seq(conn)
    alert = _fetch(conn, alert_id, lock=True)
    if alert is None:
        raise NotFound(f"alert {alert_id} does not exist")
    if expected_version is not None and alert["version"] != expected_version:
        raise Conflict(f"alert {alert_id} is at version {alert['version']}, not {expected_version}")
    if alert["status"] == to_status:
        return alert, False
    if to_status not in ALLOWED[alert["status"]]:
        raise Conflict(f"alert {alert_id} is {alert['status']}; it cannot become {to_status}")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "update alerts set status = %s, updated_at = %s, version = version + 1,"
            f" change_seq = %s where id = %s returning {ALERT_COLUMNS}",
            (to_status, now, seq, alert_id),
        )
        new = cur.fetchone()
    assert new is not None
    log_change(
        conn, new, alert["status"], actor, reason, detail or {}, now, EVENT_OF_STATUS[to_status]
    )
    return new, True


def escalate_due(conn: Connection, *, now: datetime, after_s: float) -> list[int]:
    """Escalate open alerts unacknowledged for longer than ``after_s``; returns their ids."""
    due = [
        int(r[0])
        for r in conn.execute(
            "select id from alerts where status = 'open' and escalated_at is null"
            " and created_at <= %s order by id",
            (now - timedelta(seconds=after_s),),
        )
    ]
    done = []
    for alert_id in due:
        seq = next_change_seq(conn)
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "update alerts set escalated_at = %s, updated_at = %s, version = version + 1,"
                " change_seq = %s where id = %s and status = 'open' and escalated_at is null"
                f" returning {ALERT_COLUMNS}",
                (now, now, seq, alert_id),
            )
            alert = cur.fetchone()
        if alert is None:
            continue
        detail = {"after_s": after_s}
        log_change(conn, alert, "open", "system", "escalated", detail, now, "alert.escalated")
        done.append(alert_id)
    return done


def insert_maintenance_event(
    conn: Connection,
    alert: dict[str, Any],
    *,
    kind: str,
    actor: str,
    note: str,
    now: datetime,
    source: str = "api",
) -> None:
    """Record the maintenance that resolved an alert, as a machine event (a label for models).

    seq is the negated alert id: device sequence numbers are positive, and an alert is resolved once.
    """
    conn.execute(
        "insert into machine_events (machine_id, seq, ts, event, mode, kind, detail)"
        " values (%s, %s, %s, 'maintenance', %s, %s, %s) on conflict do nothing",
        (
            alert["machine_id"],
            -int(alert["id"]),
            now,
            alert["mode"],
            kind,
            Jsonb({"alert_id": alert["id"], "actor": actor, "note": note, "source": source}),
        ),
    )


def machine_site(conn: Connection, machine_id: str) -> str:
    """The site a machine belongs to (the maintenance order's topic needs it)."""
    row = conn.execute("select site_id from machines where id = %s", (machine_id,)).fetchone()
    if row is None:
        raise NotFound(f"machine {machine_id!r} does not exist")
    return str(row[0])


def get_alert(conn: Connection, alert_id: int) -> dict[str, Any] | None:
    """One alert with its transitions, or None."""
    alert = _fetch(conn, alert_id)
    if alert is None:
        return None
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select from_status, to_status, actor, reason, detail, at from alert_transitions"
            " where alert_id = %s order by id",
            (alert_id,),
        )
        alert["transitions"] = cur.fetchall()
    return alert


def list_alerts(
    conn: Connection,
    *,
    status: Sequence[str] = (),
    machine_id: str | None = None,
    mode: str | None = None,
    severity: Sequence[str] = (),
    site_id: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Alerts, newest first, filtered; page with ``before_id`` (the last id of the previous page)."""
    where: list[str] = ["true"]
    args: list[Any] = []
    if status:
        where.append("a.status = any(%s)")
        args.append(list(status))
    if severity:
        where.append("a.severity = any(%s)")
        args.append(list(severity))
    for col, val in (("a.machine_id", machine_id), ("a.mode", mode), ("m.site_id", site_id)):
        if val is not None:
            where.append(f"{col} = %s")
            args.append(val)
    if since is not None:
        where.append("a.created_at >= %s")
        args.append(since)
    if before_id is not None:
        where.append("a.id < %s")
        args.append(before_id)
    cols = ", ".join(f"a.{c.strip()}" for c in ALERT_COLUMNS.split(","))
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"select {cols} from alerts a join machines m on m.id = a.machine_id"
            f" where {' and '.join(where)} order by a.id desc limit %s",
            (*args, limit),
        )
        return cur.fetchall()


def alert_changes(conn: Connection, cursor: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Alerts created or changed after ``cursor`` in change order, and the cursor to poll next."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"select {ALERT_COLUMNS} from alerts where change_seq > %s order by change_seq limit %s",
            (cursor, limit),
        )
        rows = cur.fetchall()
    return rows, (int(rows[-1]["change_seq"]) if rows else cursor)


def alert_changes_query(cursor: int, limit: int) -> tuple[str, dict[str, int]]:
    """SQL and parameters of a changes poll whose one value is the JSON body.

    {"alerts", "next_cursor", "has_more"}: the rows of :func:`alert_changes`, with the JSON made in
    the database, which keeps the hot polling path cheap.
    """
    sql = (
        f"with page as (select {ALERT_COLUMNS} from alerts where change_seq > %(c)s"
        "   order by change_seq limit %(n)s)"
        " select json_build_object('alerts', coalesce(json_agg(page order by page.change_seq), '[]'),"
        "  'next_cursor', coalesce(max(page.change_seq), %(c)s), 'has_more', count(*) = %(n)s)::text"
        " from page"
    )
    return sql, {"c": cursor, "n": limit}


def alert_changes_json(conn: Connection, cursor: int, limit: int) -> str:
    """The JSON body of a changes poll (see :func:`alert_changes_query`)."""
    row = conn.execute(*alert_changes_query(cursor, limit)).fetchone()
    assert row is not None
    return str(row[0])


async def alert_changes_json_async(conn: AsyncConnection, cursor: int, limit: int) -> str:
    """:func:`alert_changes_json` on an async connection (the API's hot path, no thread hop)."""
    cur = await conn.execute(*alert_changes_query(cursor, limit))
    row = await cur.fetchone()
    assert row is not None
    return str(row[0])


# --- alerts follow the machine ----------------------------------------------------------------
# Plant events are the ones a machine sent (seq > 0); an alert resolution's own maintenance record
# has a negative seq and says nothing about what the machine did.


def machine_conditions(
    conn: Connection, machine_ids: Sequence[str]
) -> dict[str, tuple[str, datetime | None]]:
    """machine -> (current state, time of its latest failure, stop or maintenance).

    The state is the latest ``state`` event's (``running`` when none). A prediction whose data
    is older than that time describes a machine that has since failed or been worked on.
    """
    rows = conn.execute(
        "select m.id, coalesce(s.state, 'running'), r.ts from unnest(%s::text[]) as m(id)"
        " left join lateral (select detail->>'state' as state from machine_events e"
        "   where e.machine_id = m.id and e.event = 'state' and e.seq > 0"
        "   order by e.ts desc, e.seq desc limit 1) s on true"
        " left join lateral (select max(e.ts) as ts from machine_events e"
        "   where e.machine_id = m.id and e.seq > 0 and (e.event in ('failure', 'maintenance')"
        "   or (e.event = 'state' and e.detail->>'state' <> 'running'))) r on true",
        (list(machine_ids),),
    ).fetchall()
    return {r[0]: (str(r[1]), r[2]) for r in rows}


def alerts_overtaken(
    conn: Connection, machine_ids: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Active alerts whose machine failed or was taken into maintenance after the alert's data.

    One row per alert with the first such plant event: ``event`` ('failure' | 'maintenance'),
    ``event_ts``, ``failure_mode``, and the machine type's ``planned_hours`` (the warning a crew
    needs to plan the work). ``machine_ids`` limits it to those machines' alerts (None: all).
    """
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select a.id, a.machine_id, a.mode, a.status, a.created_at, a.inputs_age_s,"
            " e.event, e.ts as event_ts, e.mode as failure_mode, e.detail as event_detail,"
            " t.planned_hours"
            " from alerts a join machines m on m.id = a.machine_id"
            " join machine_types t on t.id = m.type_id"
            " cross join lateral (select e.event, e.ts, e.mode, e.detail from machine_events e"
            "   where e.machine_id = a.machine_id and e.seq > 0"
            "   and e.ts >= a.created_at - make_interval(secs => coalesce(a.inputs_age_s, 0))"
            "   and (e.event in ('failure', 'maintenance')"
            "        or (e.event = 'state' and e.detail->>'state' = 'maintenance'))"
            "   order by (e.event = 'failure') desc, e.ts limit 1) e"
            " where a.status in ('open', 'acknowledged')"
            " and (%(ids)s::text[] is null or a.machine_id = any(%(ids)s::text[])) order by a.id",
            {"ids": None if machine_ids is None else list(machine_ids)},
        )
        return cur.fetchall()


# --- hysteresis state -----------------------------------------------------------------------


def load_states(
    conn: Connection, machine_ids: Sequence[str]
) -> dict[str, tuple[int, bool, datetime | None]]:
    """machine -> (consecutive_high, active, quiet_until)."""
    rows = conn.execute(
        "select machine_id, consecutive_high, active, quiet_until from alert_state"
        " where machine_id = any(%s)",
        (list(machine_ids),),
    ).fetchall()
    return {r[0]: (int(r[1]), bool(r[2]), r[3]) for r in rows}


def save_states(
    conn: Connection,
    states: Iterable[tuple[str, int, bool, datetime, datetime | None]],
    *,
    now: datetime,
) -> None:
    """Upsert (machine, consecutive_high, active, last_ts, quiet_until) rows."""
    with conn.cursor() as cur:
        cur.executemany(
            "insert into alert_state (machine_id, consecutive_high, active, last_ts, quiet_until,"
            " updated_at) values (%s, %s, %s, %s, %s, %s) on conflict (machine_id) do update set"
            " consecutive_high = excluded.consecutive_high, active = excluded.active,"
            " last_ts = excluded.last_ts, quiet_until = excluded.quiet_until,"
            " updated_at = excluded.updated_at",
            [(m, n, a, ts, q, now) for m, n, a, ts, q in states],
        )


def raised_in_shift(conn: Connection, type_id: str, since: datetime, until: datetime) -> int:
    """Alerts raised on machines of one type by predictions in [since, until) (capacity)."""
    row = conn.execute(
        "select count(*) from alerts a join machines m on m.id = a.machine_id"
        " where m.type_id = %s and a.raised_by_ts >= %s and a.raised_by_ts < %s",
        (type_id, since, until),
    ).fetchone()
    return int(row[0]) if row else 0


def new_champion_predictions(
    conn: Connection, *, per_machine: int = 500, machine_ids: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Champion predictions newer than each machine's processed position, per machine in time order.

    ``machine_ids`` limits it to those machines (None: every machine). One index probe per
    machine: the alert runner calls it when :func:`listen_champion` says there is something new.
    """
    ids = "select id from machines" if machine_ids is None else "select unnest(%(ids)s::text[])"
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select p.machine_id, m.type_id, p.ts, p.model_version_id, p.failure_prob, p.rul_h,"
            " p.rul_low_h, p.rul_high_h, p.mode, p.contributions, p.data_quality"
            f" from ({ids}) as w(id) join machines m on m.id = w.id"
            " left join alert_state s on s.machine_id = m.id"
            " cross join lateral (select * from predictions p where p.machine_id = m.id"
            "   and p.role = 'champion' and p.ts > coalesce(s.last_ts, '-infinity')"
            "   order by p.ts limit %(n)s) p"
            " order by p.machine_id, p.ts",
            {"n": per_machine, "ids": None if machine_ids is None else list(machine_ids)},
        )
        return cur.fetchall()


CHAMPION_CHANNEL = "forewarn_champion"  # migration 075: NOTIFY on every new champion prediction


def listen_champion(conn: Connection, on_new: Callable[[], None]) -> None:
    """Call ``on_new`` whenever champion predictions were committed (LISTEN, migration 075).

    ``on_new`` runs inside psycopg's result processing of a later statement on ``conn``, so it
    must only set a flag. Any schema's predictions wake it (schemas on one database share the
    channel): a wake with nothing new costs one look, a missed one an alert.
    """
    conn.add_notify_handler(lambda n: on_new() if n.channel == CHAMPION_CHANNEL else None)
    conn.execute(f"listen {CHAMPION_CHANNEL}")


def flag_predictions(conn: Connection, flags: Iterable[tuple[str, datetime, str]]) -> None:
    """Mark (machine, ts) champion predictions as low data quality with a reason."""
    with conn.cursor() as cur:
        cur.executemany(
            "update predictions set data_quality = %s"
            " where machine_id = %s and ts = %s and role = 'champion' and data_quality = 'ok'",
            [(q, m, ts) for m, ts, q in flags],
        )


# --- thresholds -----------------------------------------------------------------------------


# Each champion prediction whose horizon has passed, labelled with whether the machine failed
# within the horizon after it. The next failure comes from one pass over a machine's predictions
# and failures in time order (a running min over the later rows) instead of a lookup per
# prediction: on a 500-machine week, 0.5 s instead of 6 s. ``latest`` is the table whose newest
# time ends the labelled span.
_LABELLED = """
with lim as (select greatest((select max(ts) from machine_events),
                             (select max(ts) from {latest})) as t),
x as (
  select p.machine_id, p.ts, p.failure_prob, null::timestamptz as failed_at
  from predictions p, lim
  where p.role = %(role)s and p.failure_prob is not null and p.data_quality = 'ok'
    and p.ts + make_interval(secs => %(h)s) <= lim.t
    and (%(type_id)s::text is null
         or p.machine_id in (select id from machines where type_id = %(type_id)s))
  union all
  select machine_id, ts, null, ts from machine_events where event = 'failure'),
y as (
  select machine_id, ts, failure_prob,
         min(failed_at) over (partition by machine_id order by ts desc
                              range between unbounded preceding and '1 microsecond' preceding)
           as next_failure
  from x)
select y.machine_id, y.ts, m.type_id, y.failure_prob,
       coalesce(y.next_failure <= y.ts + make_interval(secs => %(h)s), false) as failed
from y join machines m on m.id = y.machine_id
where y.failure_prob is not null
order by y.ts desc limit %(limit)s
"""


def labelled_history(
    conn: Connection, type_id: str, *, horizon_h: float, limit: int = 100_000
) -> list[tuple[str, datetime, float, bool]]:
    """(machine, time, champion probability, a failure followed within the horizon) per score.

    Only predictions whose horizon has passed (before the latest event or prediction) count.
    """
    rows = conn.execute(
        _LABELLED.format(latest="predictions"),
        {"h": horizon_h * 3600, "role": "champion", "type_id": type_id, "limit": limit},
    ).fetchall()
    return [(str(r[0]), r[1], float(r[3]), bool(r[4])) for r in rows]


def labelled_predictions(
    conn: Connection, *, horizon_h: float, role: str = "champion", limit: int = 200_000
) -> list[tuple[str, float, bool]]:
    """(machine type, probability, failed within the horizon) of the newest labelled predictions.

    A prediction is labelled once its horizon has passed before the newest reading or event;
    predictions flagged for data quality are left out (they raised nothing).
    """
    rows = conn.execute(
        _LABELLED.format(latest="readings"),
        {"h": horizon_h * 3600, "role": role, "type_id": None, "limit": limit},
    ).fetchall()
    return [(str(r[2]), float(r[3]), bool(r[4])) for r in rows]


def calibration_sums(
    conn: Connection,
    *,
    horizon_h: float,
    bins: int,
    role: str = "champion",
    limit: int = 200_000,
) -> list[tuple[str, int, int, float, int, float]]:
    """Per (machine type, probability bin): count, sum of probabilities, failures and sum of
    squared errors over the newest labelled predictions (those of :func:`labelled_predictions`).

    Bins as ``models.calibration.bin_index``: the probability clipped to [0, 1] times ``bins``,
    rounded down, 1.0 in the last bin. Ten rows per type instead of every prediction.
    """
    rows = conn.execute(
        "select type_id, least(floor(p * %(bins)s)::int, %(bins)s - 1), count(*), sum(p),"
        "   sum(y), sum((p - y) ^ 2)"
        " from (select type_id, greatest(least(failure_prob, 1), 0) as p, failed::int as y"
        "   from (" + _LABELLED.format(latest="readings") + ") l) c"
        " group by 1, 2 order by 1, 2",
        {"h": horizon_h * 3600, "role": role, "type_id": None, "limit": limit, "bins": bins},
    ).fetchall()
    return [
        (str(t), int(b), int(n), float(sp), int(pos), float(sq)) for t, b, n, sp, pos, sq in rows
    ]


def alert_status(conn: Connection, alert_id: int) -> str | None:
    """An alert's status, or None when there is no such alert."""
    row = conn.execute("select status from alerts where id = %s", (alert_id,)).fetchone()
    return None if row is None else str(row[0])


def insert_alert_record(
    conn: Connection,
    *,
    machine_id: str,
    mode: str,
    status: str,
    severity: str,
    failure_prob: float,
    ttf_h: float,
    ttf_low_h: float,
    ttf_high_h: float,
    contributions: Any,
    model_version_id: int | None,
    inputs_age_s: float,
    recommended_action: str,
    created_at: datetime,
    updated_at: datetime,
    version: int,
    change_seq: int,
) -> int:
    """Store an alert as history recorded it (times, version and change_seq given); returns its id.

    For imported or generated history: live alerts go through :func:`insert_alert`.
    """
    row = conn.execute(
        "insert into alerts (machine_id, mode, status, severity, failure_prob, ttf_h, ttf_low_h,"
        " ttf_high_h, contributions, model_version_id, inputs_age_s, recommended_action,"
        " created_at, updated_at, version, change_seq)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) returning id",
        (
            machine_id,
            mode,
            status,
            severity,
            failure_prob,
            ttf_h,
            ttf_low_h,
            ttf_high_h,
            Jsonb(contributions),
            model_version_id,
            inputs_age_s,
            recommended_action,
            created_at,
            updated_at,
            version,
            change_seq,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def insert_transition_records(
    conn: Connection, rows: Sequence[tuple[int, str | None, str, str, str, datetime, Any]]
) -> None:
    """Store recorded transitions (alert_id, from, to, actor, reason, at, detail)."""
    with conn.cursor() as cur:
        cur.executemany(
            "insert into alert_transitions"
            " (alert_id, from_status, to_status, actor, reason, at, detail)"
            " values (%s, %s, %s, %s, %s, %s, %s)",
            [(*r[:6], Jsonb(r[6])) for r in rows],
        )


def set_change_counter(conn: Connection, seq: int, *, at_least: bool = False) -> None:
    """Set the alert change counter to ``seq`` (with ``at_least``: never lower it)."""
    if at_least:
        conn.execute("update alert_change_counter set seq = greatest(seq, %s) where id = 1", (seq,))
    else:
        conn.execute("update alert_change_counter set seq = %s", (seq,))

"""Notification storage: channels, routing rules, mute windows, the outbox and its attempt log.

Notifications are queued by SQL in the transaction that causes them: an alert change
(:func:`enqueue_notifications`, called by ``alerts.log_change``), an assignment or comment
(:func:`enqueue_personal`), or a plant-clock timer (:func:`enqueue_due`: reminders until an alert is
acknowledged, escalation to a second channel, daily digests). While plant time is inside a mute
window of the machine, its line or its site, a notification is recorded as ``muted`` and not sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import Connection, errors
from psycopg.rows import dict_row

from forewarn.errors import Conflict, NotFound

SEVERITIES = ("low", "medium", "high", "critical")
CHANNEL_KINDS = ("email", "teams", "slack", "webhook")
MUTE_SCOPES = ("machine", "line", "site")
CHANNEL_COLUMNS = "id, name, kind, target, user_id, digest_hour, active, created_by, created_at"
RULE_COLUMNS = (
    "id, name, channel_id, site_id, line_id, type_id, min_severity, mode, events, remind_every_s,"
    " escalate_after_s, escalate_channel_id, active, created_by, created_at"
)
MUTE_COLUMNS = "id, scope, scope_id, starts_at, ends_at, reason, created_by, created_at"

# rule r matches alert a on machine m
_MATCH = """
    (r.site_id is null or r.site_id = m.site_id)
    and (r.line_id is null or r.line_id = m.line_id)
    and (r.type_id is null or r.type_id = m.type_id)
    and (r.mode is null or r.mode = a.mode)
    and (r.min_severity is null or array_position(%(sev)s::text[], a.severity)
         >= array_position(%(sev)s::text[], r.min_severity))
"""
# machine m is inside a mute window at plant time %(now)s
_MUTED = """
    exists (select 1 from mute_windows w where w.starts_at <= %(now)s and %(now)s < w.ends_at
        and ((w.scope = 'machine' and w.scope_id = m.id) or (w.scope = 'line' and w.scope_id = m.line_id)
             or (w.scope = 'site' and w.scope_id = m.site_id)))
"""


def _payload(kind: str) -> str:
    return f"""jsonb_build_object('event', %(event)s::text, 'kind', '{kind}', 'alert', to_jsonb(a),
        'machine', jsonb_build_object('id', m.id, 'site', m.site_id, 'line', m.line_id,
                                      'type', m.type_id),
        'actor', %(actor)s::text, 'text', %(text)s::text)"""


_SUBJECT = "format('[Forewarn] %%s: %%s alert #%%s, %%s on %%s', %(label)s::text, a.severity, a.id, a.mode, m.id)"
_STATUS = f"case when {_MUTED} then 'muted' else 'pending' end"
_INSERT = (
    "insert into notifications (channel_id, rule_id, alert_id, kind, event, subject, payload,"
    " status, created_at)"
)
EVENT_LABELS = {
    "alert.raised": "New",
    "alert.updated": "Severity changed",
    "alert.acknowledged": "Acknowledged",
    "alert.resolved": "Resolved",
    "alert.dismissed": "Dismissed",
    "alert.escalated": "Escalated",
    "alert.assigned": "Assigned",
    "alert.commented": "Comment",
}


def _args(now: datetime, **kw: Any) -> dict[str, Any]:
    return {"now": now, "sev": list(SEVERITIES), "actor": None, "text": None} | kw


def enqueue_notifications(
    conn: Connection, event: str, alert: dict[str, Any], *, now: datetime, actor: str, reason: str
) -> int:
    """Queue the alert event for every active rule that matches it (in the caller's transaction)."""
    cur = conn.execute(
        f"{_INSERT} select r.channel_id, r.id, a.id, 'event', %(event)s, {_SUBJECT},"
        f" {_payload('event')}, {_STATUS}, %(now)s"
        " from notification_rules r"
        " join notification_channels c on c.id = r.channel_id and c.active"
        " join alerts a on a.id = %(alert)s join machines m on m.id = a.machine_id"
        f" where r.active and %(event)s::text = any(r.events) and {_MATCH}",
        _args(
            now,
            event=event,
            alert=alert["id"],
            actor=actor,
            text=reason,
            label=EVENT_LABELS.get(event, event),
        ),
    )
    return cur.rowcount


def enqueue_personal(
    conn: Connection, alert: dict[str, Any], *, user_id: int, kind: str, text: str, now: datetime
) -> int:
    """Queue an assignment or comment notification to a person's own channels."""
    label = {"assignment": "Assigned to you", "comment": "New comment"}[kind]
    cur = conn.execute(
        f"{_INSERT} select c.id, null, a.id, %(kind)s, %(event)s, {_SUBJECT},"
        f" {_payload(kind)}, {_STATUS}, %(now)s"
        " from notification_channels c join alerts a on a.id = %(alert)s"
        " join machines m on m.id = a.machine_id where c.active and c.user_id = %(user)s",
        _args(
            now,
            kind=kind,
            event=f"alert.{kind}",
            alert=alert["id"],
            user=user_id,
            text=text,
            label=label,
        ),
    )
    return cur.rowcount


def enqueue_due(conn: Connection, *, now: datetime) -> dict[str, int]:
    """Queue what the plant clock made due: reminders, escalations and daily digests."""
    reminders = conn.execute(
        f"{_INSERT} select r.channel_id, r.id, a.id, 'reminder', 'alert.reminder', {_SUBJECT},"
        f" {_payload('reminder')}, {_STATUS}, %(now)s"
        " from notification_rules r"
        " join notification_channels c on c.id = r.channel_id and c.active"
        " join lateral (select n.alert_id, max(n.created_at) as last from notifications n"
        "   where n.rule_id = r.id and n.kind in ('event', 'reminder') and n.alert_id is not null"
        "   group by n.alert_id) l on true"
        " join alerts a on a.id = l.alert_id and a.status = 'open'"
        " join machines m on m.id = a.machine_id"
        " where r.active and r.remind_every_s is not null"
        " and l.last <= %(now)s - make_interval(secs => r.remind_every_s)",
        _args(now, event="alert.reminder", label="Reminder, not acknowledged"),
    ).rowcount
    escalations = conn.execute(
        f"{_INSERT} select r.escalate_channel_id, r.id, a.id, 'escalation', 'alert.escalation',"
        f" {_SUBJECT}, {_payload('escalation')}, {_STATUS}, %(now)s"
        " from notification_rules r"
        " join notification_channels c on c.id = r.escalate_channel_id and c.active"
        " join alerts a on a.status = 'open'"
        "   and a.created_at <= %(now)s - make_interval(secs => r.escalate_after_s)"
        " join machines m on m.id = a.machine_id"
        " where r.active and r.escalate_after_s is not null"
        " and exists (select 1 from notifications n where n.rule_id = r.id and n.alert_id = a.id"
        "   and n.kind = 'event')"
        " and not exists (select 1 from notifications n where n.rule_id = r.id"
        "   and n.alert_id = a.id and n.kind = 'escalation')",
        _args(now, event="alert.escalation", label="Escalation, still not acknowledged"),
    ).rowcount
    digests = conn.execute(
        "insert into notifications (channel_id, kind, event, subject, payload, status, created_at,"
        " dedupe_key)"
        " select c.id, 'digest', 'digest.daily',"
        "   format('[Forewarn] Daily digest %%s: %%s alerts in 24 h', d.day, coalesce(x.n, 0)),"
        "   jsonb_build_object('event', 'digest.daily', 'kind', 'digest', 'day', d.day,"
        "     'alerts', coalesce(x.alerts, '[]'::jsonb)), 'pending', %(now)s,"
        "   'digest:' || c.id || ':' || d.day"
        " from notification_channels c"
        " cross join lateral (select to_char(%(now)s at time zone 'UTC', 'YYYY-MM-DD') as day) d"
        " left join lateral (select count(*) as n, jsonb_agg(jsonb_build_object('id', a.id,"
        "     'machine', a.machine_id, 'mode', a.mode, 'severity', a.severity, 'status', a.status,"
        "     'created_at', a.created_at) order by a.id) as alerts"
        "   from alerts a join machines m on m.id = a.machine_id"
        "   where a.created_at > %(now)s - interval '24 hours' and a.created_at <= %(now)s"
        "   and (not exists (select 1 from notification_rules r where r.channel_id = c.id"
        "          and r.active)"
        f"        or exists (select 1 from notification_rules r where r.channel_id = c.id"
        f"          and r.active and {_MATCH}))) x on true"
        " where c.active and c.digest_hour is not null"
        " and extract(hour from %(now)s at time zone 'UTC') >= c.digest_hour"
        " on conflict (dedupe_key) do nothing",
        _args(now),
    ).rowcount
    return {"reminders": reminders, "escalations": escalations, "digests": digests}


def _insert(conn: Connection, table: str, cols: str, values: dict[str, Any]) -> dict[str, Any]:
    names = ", ".join(values)
    marks = ", ".join(f"%({k})s" for k in values)
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(f"insert into {table} ({names}) values ({marks}) returning {cols}", values)
            row = cur.fetchone()
    except errors.UniqueViolation:
        raise Conflict(
            f"a {table[:-1].replace('_', ' ')} named {values.get('name')!r} exists"
        ) from None
    except errors.ForeignKeyViolation as exc:
        raise NotFound(f"{exc.diag.message_detail or exc}") from None
    except errors.CheckViolation as exc:
        raise ValueError(
            f"invalid {table[:-1].replace('_', ' ')}: {exc.diag.constraint_name}"
        ) from None
    assert row is not None
    return row


def create_channel(
    conn: Connection,
    *,
    name: str,
    kind: str,
    target: str,
    actor: str,
    secret: str | None = None,
    user_id: int | None = None,
    digest_hour: int | None = None,
) -> dict[str, Any]:
    """A destination: an e-mail address (kind email) or a webhook URL (teams, slack, webhook)."""
    if kind not in CHANNEL_KINDS:
        raise ValueError(f"kind must be one of {', '.join(CHANNEL_KINDS)}")
    if kind == "email" and "@" not in target:
        raise ValueError("an e-mail channel's target is an e-mail address")
    if kind != "email" and not target.startswith(("https://", "http://")):
        raise ValueError(f"a {kind} channel's target is an http(s) URL")
    values = {
        "name": name,
        "kind": kind,
        "target": target,
        "secret": secret,
        "user_id": user_id,
        "digest_hour": digest_hour,
        "created_by": actor,
    }
    return _insert(conn, "notification_channels", CHANNEL_COLUMNS, values)


def list_channels(conn: Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"select {CHANNEL_COLUMNS} from notification_channels order by id")
        return cur.fetchall()


def create_rule(
    conn: Connection, *, name: str, channel_id: int, actor: str, **filters: Any
) -> dict[str, Any]:
    """A routing rule; ``filters``: site_id, line_id, type_id, min_severity, mode, events,
    remind_every_s, escalate_after_s, escalate_channel_id (None = any / off)."""
    allowed = set(RULE_COLUMNS.replace(" ", "").split(",")) - {
        "id",
        "name",
        "channel_id",
        "active",
        "created_by",
        "created_at",
    }
    unknown = set(filters) - allowed
    if unknown:
        raise ValueError(f"unknown rule fields: {sorted(unknown)}")
    sev = filters.get("min_severity")
    if sev is not None and sev not in SEVERITIES:
        raise ValueError(f"min_severity must be one of {', '.join(SEVERITIES)}")
    values = {"name": name, "channel_id": channel_id, "created_by": actor} | {
        k: v for k, v in filters.items() if v is not None
    }
    return _insert(conn, "notification_rules", RULE_COLUMNS, values)


def list_rules(conn: Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"select {RULE_COLUMNS} from notification_rules order by id")
        return cur.fetchall()


def set_active(conn: Connection, table: str, row_id: int, active: bool) -> bool:
    """Switch a channel or rule on or off (kept for the delivery log); False when unknown."""
    if table not in ("notification_channels", "notification_rules"):
        raise ValueError(table)
    return (
        conn.execute(f"update {table} set active = %s where id = %s", (active, row_id)).rowcount
        == 1
    )


def create_mute(
    conn: Connection,
    *,
    scope: str,
    scope_id: str,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    actor: str,
) -> dict[str, Any]:
    """A maintenance window or mute schedule for a machine, line or site (plant time)."""
    if scope not in MUTE_SCOPES:
        raise ValueError(f"scope must be one of {', '.join(MUTE_SCOPES)}")
    if ends_at <= starts_at:
        raise ValueError("a mute window ends after it starts")
    table = {"machine": "machines", "line": "lines", "site": "sites"}[scope]
    if conn.execute(f"select 1 from {table} where id = %s", (scope_id,)).fetchone() is None:
        raise NotFound(f"{scope} {scope_id!r} does not exist")
    values = {
        "scope": scope,
        "scope_id": scope_id,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "reason": reason,
        "created_by": actor,
    }
    return _insert(conn, "mute_windows", MUTE_COLUMNS, values)


def list_mutes(conn: Connection, *, active_at: datetime | None = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        if active_at is None:
            cur.execute(f"select {MUTE_COLUMNS} from mute_windows order by starts_at desc")
        else:
            cur.execute(
                f"select {MUTE_COLUMNS} from mute_windows where ends_at > %s order by starts_at",
                (active_at,),
            )
        return cur.fetchall()


def delete_mute(conn: Connection, mute_id: int) -> bool:
    return conn.execute("delete from mute_windows where id = %s", (mute_id,)).rowcount == 1


def claim_pending(conn: Connection, limit: int = 100) -> list[dict[str, Any]]:
    """Pending notifications with their channel, oldest first (lock each with :func:`lock_pending`)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select n.id, n.kind, n.event, n.subject, n.payload, n.attempts, c.kind as channel_kind,"
            " c.target, c.secret, c.name as channel"
            " from notifications n join notification_channels c on c.id = n.channel_id"
            " where n.status = 'pending' order by n.id limit %s",
            (limit,),
        )
        return cur.fetchall()


def lock_pending(conn: Connection, notification_id: int) -> bool:
    row = conn.execute(
        "select 1 from notifications where id = %s and status = 'pending' for update skip locked",
        (notification_id,),
    ).fetchone()
    return row is not None


def record_attempt(
    conn: Connection,
    notification_id: int,
    attempt: int,
    *,
    ok: bool,
    status_code: int | None,
    error: str | None,
    duration_ms: float,
) -> None:
    conn.execute(
        "insert into notification_attempts (notification_id, attempt, ok, status_code, error,"
        " duration_ms) values (%s, %s, %s, %s, %s, %s)",
        (notification_id, attempt, ok, status_code, error, duration_ms),
    )


def finish(conn: Connection, notification_id: int, *, delivered: bool, attempts: int) -> None:
    conn.execute(
        "update notifications set status = %s, attempts = %s,"
        " delivered_at = case when %s then now() end where id = %s",
        ("delivered" if delivered else "failed", attempts, delivered, notification_id),
    )


def delivery_log(
    conn: Connection,
    *,
    alert_id: int | None = None,
    channel_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Recent notifications (newest first) with channel, status and every attempt."""
    where, args = ["true"], []
    if alert_id is not None:
        where.append("n.alert_id = %s")
        args.append(alert_id)
    if channel_id is not None:
        where.append("n.channel_id = %s")
        args.append(channel_id)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select n.id, n.alert_id, n.rule_id, n.channel_id, c.name as channel, c.kind as channel_kind,"
            " n.kind, n.event, n.subject, n.status, n.attempts, n.created_at, n.delivered_at,"
            " coalesce((select json_agg(json_build_object('attempt', t.attempt, 'at', t.at,"
            "   'ok', t.ok, 'status_code', t.status_code, 'error', t.error,"
            "   'duration_ms', t.duration_ms) order by t.id)"
            "   from notification_attempts t where t.notification_id = n.id), '[]') as log"
            " from notifications n join notification_channels c on c.id = n.channel_id"
            f" where {' and '.join(where)} order by n.id desc limit %s",
            (*args, limit),
        )
        return cur.fetchall()

"""Webhook storage: subscriptions, the delivery outbox (written with the alert change) and attempts."""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

WEBHOOK_COLUMNS = "id, url, events, active, created_by, created_at"


def create_webhook(
    conn: Connection, *, url: str, secret: str, events: list[str], actor: str
) -> dict[str, Any]:
    """A new subscription; the secret is returned only here."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "insert into webhooks (url, secret, events, created_by) values (%s, %s, %s, %s)"
            f" returning {WEBHOOK_COLUMNS}",
            (url, secret, events, actor),
        )
        row = cur.fetchone()
    assert row is not None
    return row


def list_webhooks(conn: Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"select {WEBHOOK_COLUMNS} from webhooks order by id")
        return cur.fetchall()


def deactivate_webhook(conn: Connection, webhook_id: int) -> bool:
    """Stop deliveries to a subscription (kept for its delivery log); False when unknown."""
    cur = conn.execute("update webhooks set active = false where id = %s and active", (webhook_id,))
    return cur.rowcount == 1


def enqueue_deliveries(
    conn: Connection, event: str, alert_id: int | None, payload: dict[str, Any]
) -> int:
    """Queue ``payload`` for every active subscription to ``event`` (inside the caller's transaction)."""
    cur = conn.execute(
        "insert into webhook_deliveries (webhook_id, event, alert_id, payload)"
        " select id, %s, %s, %s from webhooks"
        " where active and (cardinality(events) = 0 or %s = any(events))",
        (event, alert_id, Jsonb(payload), event),
    )
    return cur.rowcount


def lock_pending(conn: Connection, delivery_id: int) -> bool:
    """Lock one delivery for sending (until commit); False when another sender has it or it is done."""
    row = conn.execute(
        "select 1 from webhook_deliveries where id = %s and status = 'pending'"
        " for update skip locked",
        (delivery_id,),
    ).fetchone()
    return row is not None


def claim_pending(conn: Connection, limit: int = 100) -> list[dict[str, Any]]:
    """Pending deliveries with their target, oldest first (lock each with :func:`lock_pending`)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select d.id, d.event, d.payload, d.attempts, w.url, w.secret"
            " from webhook_deliveries d join webhooks w on w.id = d.webhook_id"
            " where d.status = 'pending' order by d.id limit %s",
            (limit,),
        )
        return cur.fetchall()


def record_attempt(
    conn: Connection,
    delivery_id: int,
    attempt: int,
    *,
    status_code: int | None,
    error: str | None,
    duration_ms: float,
) -> None:
    conn.execute(
        "insert into webhook_attempts (delivery_id, attempt, status_code, error, duration_ms)"
        " values (%s, %s, %s, %s, %s)",
        (delivery_id, attempt, status_code, error, duration_ms),
    )


def finish_delivery(conn: Connection, delivery_id: int, *, delivered: bool, attempts: int) -> None:
    conn.execute(
        "update webhook_deliveries set status = %s, attempts = %s,"
        " delivered_at = case when %s then now() end where id = %s",
        ("delivered" if delivered else "failed", attempts, delivered, delivery_id),
    )


def deliveries(conn: Connection, webhook_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """Recent deliveries of one subscription with their attempts."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select d.id, d.event, d.alert_id, d.status, d.attempts, d.created_at, d.delivered_at,"
            " coalesce((select json_agg(json_build_object('attempt', a.attempt, 'at', a.at,"
            "   'status_code', a.status_code, 'error', a.error, 'duration_ms', a.duration_ms)"
            "   order by a.id) from webhook_attempts a where a.delivery_id = d.id), '[]') as log"
            " from webhook_deliveries d where d.webhook_id = %s order by d.id desc limit %s",
            (webhook_id, limit),
        )
        return cur.fetchall()

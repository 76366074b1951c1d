"""Send queued notifications: e-mail over SMTP (STARTTLS or TLS, AUTH), Teams and Slack webhooks, and
signed webhooks; each retried with exponential backoff, every attempt logged.

Like webhook deliveries, each notification is sent under a row lock (skip locked) and committed on
its own, so two senders never send the same one and a crash re-sends at most the one in flight.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import time
from typing import Any

import httpx
from psycopg import Connection

from forewarn import egress
from forewarn.egress import DestinationRefused, EgressPolicy
from forewarn.notify import formats
from forewarn.settings import NotifySettings
from forewarn.storage import notifications as store
from forewarn.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryFailed,
    send_with_retries,
    sign,
)

log = logging.getLogger(__name__)


def send_email(cfg: NotifySettings, to: str, subject: str, payload: dict[str, Any]) -> None:
    """Send one e-mail; raises DeliveryFailed with the server's answer on any failure."""
    if not cfg.smtp_host:
        raise DeliveryFailed("no SMTP server configured (FOREWARN_NOTIFY__SMTP_HOST)")
    link = formats.alert_link(cfg.dashboard_url, payload)
    msg = formats.email_message(subject, payload, sender=cfg.smtp_from, to=to, link=link)
    context = ssl.create_default_context(cafile=str(cfg.smtp_ca_file) if cfg.smtp_ca_file else None)
    try:
        smtp: smtplib.SMTP
        if cfg.smtp_tls == "ssl":
            smtp = smtplib.SMTP_SSL(
                cfg.smtp_host, cfg.smtp_port, timeout=cfg.timeout_s, context=context
            )
        else:
            smtp = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.timeout_s)
        with smtp:
            if cfg.smtp_tls == "starttls":
                smtp.starttls(context=context)
            if cfg.smtp_username:
                password = cfg.smtp_password.get_secret_value() if cfg.smtp_password else ""
                smtp.login(cfg.smtp_username, password)
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}"[:500]) from exc


def _http(client: httpx.Client, n: dict[str, Any], link: str | None, policy: EgressPolicy) -> int:
    kind, payload = n["channel_kind"], n["payload"]
    headers = {"Content-Type": "application/json"}
    if kind == "teams":
        body = json.dumps(formats.teams_card(n["subject"], payload, link=link)).encode()
    elif kind == "slack":
        body = json.dumps(formats.slack_message(n["subject"], payload, link=link)).encode()
    else:
        body = json.dumps(
            {"subject": n["subject"], **payload}, separators=(",", ":"), sort_keys=True
        ).encode()
        ts = int(time.time())
        headers |= {
            "X-Forewarn-Event": n["event"],
            "X-Forewarn-Delivery": f"n{n['id']}",
            TIMESTAMP_HEADER: str(ts),
            SIGNATURE_HEADER: sign(n["secret"] or "", ts, body),
        }
    try:  # the webhooks' egress policy: public destinations only, checked at every attempt
        code = egress.post(client, n["target"], policy, content=body, headers=headers)
    except DestinationRefused as exc:
        raise DeliveryFailed(f"refused: {exc}"[:500]) from exc
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}"[:500]) from exc
    if not 200 <= code < 300:
        raise DeliveryFailed(f"HTTP {code}", code)
    return code


def send_one(
    cfg: NotifySettings, client: httpx.Client, n: dict[str, Any], policy: EgressPolicy
) -> int | None:
    """One attempt for one notification; the HTTP status for webhooks, None for e-mail."""
    if n["channel_kind"] == "email":
        send_email(cfg, n["target"], n["subject"], n["payload"])
        return None
    return _http(client, n, formats.alert_link(cfg.dashboard_url, n["payload"]), policy)


def deliver_notifications(
    conn: Connection,
    cfg: NotifySettings,
    client: httpx.Client,
    *,
    policy: EgressPolicy,
    backoff_s: float = 0.5,
    backoff_max_s: float = 8.0,
    limit: int = 100,
) -> tuple[int, int]:
    """Send pending notifications with retries; returns (delivered, failed)."""
    delivered = failed = 0
    with conn.transaction():
        batch = store.claim_pending(conn, limit)
    for n in batch:

        def record(
            k: int, code: int | None, error: str | None, ms: float, _id: int = n["id"]
        ) -> None:
            store.record_attempt(
                conn, _id, k, ok=error is None, status_code=code, error=error, duration_ms=ms
            )

        with conn.transaction():
            if not store.lock_pending(conn, n["id"]):
                continue  # another sender took it since the listing
            ok, tries = send_with_retries(
                lambda n=n: send_one(cfg, client, n, policy),  # type: ignore[misc]
                record,
                done_before=n["attempts"],
                attempts=cfg.attempts,
                backoff_s=backoff_s,
                backoff_max_s=backoff_max_s,
            )
            if not ok:
                log.warning(
                    "notification %s to %s failed after %d attempts", n["id"], n["channel"], tries
                )
            store.finish(conn, n["id"], delivered=ok, attempts=tries)
        delivered += ok
        failed += not ok
    return delivered, failed


def notify_tick(
    conn: Connection, cfg: NotifySettings, client: httpx.Client, *, now: Any, policy: EgressPolicy
) -> dict[str, int]:
    """One pass on the plant clock: queue due reminders, escalations and digests, then deliver."""
    with conn.transaction():
        due = store.enqueue_due(conn, now=now)
    sent, failed = deliver_notifications(conn, cfg, client, policy=policy)
    return due | {"delivered": sent, "failed": failed}

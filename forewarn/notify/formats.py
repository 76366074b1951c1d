"""Pure message builders for one queued notification: e-mail, Teams Adaptive Card, Slack Block Kit.

Every builder takes the notification's subject and payload (written by
``forewarn.storage.notifications``: ``event``, ``kind``, ``alert``, ``machine``, ``actor``, ``text``; a
digest has ``day`` and ``alerts``) and a link to the dashboard, and returns what the channel expects.
"""

from __future__ import annotations

import html
from email.message import EmailMessage
from typing import Any

TEAMS_CARD_VERSION = "1.4"  # the highest version Teams renders in Workflows posts
SLACK_HEADER_MAX = 150  # Block Kit limits
SLACK_FIELD_MAX = 2000
SLACK_FIELDS_MAX = 10


def _num(x: Any, fmt: str, unit: str = "") -> str:
    return "unknown" if x is None else f"{format(float(x), fmt)}{unit}"


def facts(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs describing the alert or the digest, in reading order; never 'None'."""
    if payload.get("kind") == "digest":
        alerts = payload.get("alerts") or []
        rows = [("Day", str(payload.get("day", ""))), ("Alerts in 24 h", str(len(alerts)))]
        for a in alerts[:20]:
            rows.append(
                (f"#{a['id']} {a['machine']}", f"{a['severity']} · {a['mode']} · {a['status']}")
            )
        if len(alerts) > 20:
            rows.append(("…", f"{len(alerts) - 20} more in the dashboard"))
        return rows
    a = payload.get("alert") or {}
    m = payload.get("machine") or {}
    ttf = "unknown"
    if a.get("ttf_h") is not None:
        ttf = f"{float(a['ttf_h']):.0f} h"
        if a.get("ttf_low_h") is not None and a.get("ttf_high_h") is not None:
            ttf += f" ({float(a['ttf_low_h']):.0f}–{float(a['ttf_high_h']):.0f} h)"
    place = " / ".join(str(p) for p in (m.get("site"), m.get("line")) if p)
    rows = [
        ("Machine", f"{m.get('id', a.get('machine_id', ''))} ({m.get('type', '')})"),
        ("Site / line", place or "—"),
        ("Failure mode", str(a.get("mode", ""))),
        ("Severity", str(a.get("severity", ""))),
        ("Failure probability", _num(a.get("failure_prob"), ".0%")),
        ("Time to failure", ttf),
        ("Status", str(a.get("status", ""))),
        ("Recommended action", str(a.get("recommended_action") or "—")),
    ]
    if payload.get("text"):
        who = payload.get("actor") or "system"
        rows.append(
            (
                "Note",
                f"{payload['text']} ({who})" if who not in payload["text"] else payload["text"],
            )
        )
    return rows


def alert_link(base: str | None, payload: dict[str, Any]) -> str | None:
    """The dashboard's Alerts page, selecting this alert when there is one."""
    if not base:
        return None
    a = payload.get("alert") or {}
    base = base.rstrip("/")
    return f"{base}/alerts?alert={a['id']}" if a.get("id") is not None else base


def email_message(
    subject: str, payload: dict[str, Any], *, sender: str, to: str, link: str | None
) -> EmailMessage:
    """A plain-text e-mail with an HTML alternative."""
    rows = facts(payload)
    text = "\n".join(f"{k}: {v}" for k, v in rows)
    if link:
        text += f"\n\nOpen in Forewarn: {link}"
    cells = "".join(
        f"<tr><th align='left' style='padding:2px 12px 2px 0'>{html.escape(k)}</th>"
        f"<td>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    anchor = f"<p><a href='{html.escape(link)}'>Open in Forewarn</a></p>" if link else ""
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = to
    msg.set_content(text + "\n")
    msg.add_alternative(
        f"<html><body><h3>{html.escape(subject)}</h3><table>{cells}</table>{anchor}</body></html>",
        subtype="html",
    )
    return msg


def teams_card(subject: str, payload: dict[str, Any], *, link: str | None) -> dict[str, Any]:
    """A Teams Workflows ("When a Teams webhook request is received") message with an Adaptive Card."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": subject, "weight": "Bolder", "size": "Medium", "wrap": True},
        {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in facts(payload)]},
    ]
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": TEAMS_CARD_VERSION,
        "body": body,
    }
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open in Forewarn", "url": link}]
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def slack_message(subject: str, payload: dict[str, Any], *, link: str | None) -> dict[str, Any]:
    """A Slack incoming-webhook message: fallback ``text`` plus Block Kit blocks within Slack's limits."""
    rows = facts(payload)
    fields = [
        {"type": "mrkdwn", "text": _clip(f"*{k}*\n{v}", SLACK_FIELD_MAX)}
        for k, v in rows[:SLACK_FIELDS_MAX]
    ]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(subject, SLACK_HEADER_MAX)},
        },
        {"type": "section", "fields": fields},
    ]
    if len(rows) > SLACK_FIELDS_MAX:
        rest = "\n".join(f"*{k}*: {v}" for k, v in rows[SLACK_FIELDS_MAX:])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(rest, 3000)}})
    if link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in Forewarn"},
                        "url": link,
                    }
                ],
            }
        )
    return {"text": subject, "blocks": blocks}

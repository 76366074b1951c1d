"""Notifications: e-mail to a real SMTP server (STARTTLS, AUTH), Teams and Slack formats to a real HTTP
receiver, routing, reminders until acknowledged, escalation, mute windows and the daily digest."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from forewarn.egress import EgressPolicy
from forewarn.notify.delivery import deliver_notifications
from forewarn.settings import NotifySettings
from forewarn.storage import alerts as alert_store
from forewarn.storage import notifications as ns
from forewarn.storage.assets import upsert_registry
from forewarn.storage.people import assign_alert, comment_alert, create_user
from forewarn.webhooks import verify_signature
from tests.factories import make_registry
from tests.fixtures.notify import HttpReceiver, SmtpServer

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
LOOPBACK = EgressPolicy(allow_http=True, allow=("127.0.0.1",))  # the test receivers


@pytest.fixture
def conn(db_url: str) -> psycopg.Connection:
    c = psycopg.connect(db_url, autocommit=True)
    upsert_registry(c, make_registry(3))
    yield c
    c.close()


def _raise(conn: psycopg.Connection, machine: str = "s1-pump-000", *, severity: str = "high",
           mode: str = "bearing", now: datetime = T0) -> dict:  # fmt: skip
    a = alert_store.NewAlert(machine, mode, severity, 0.87, 30.0, 20.0, 44.0, [], None, 60.0,
                             "Inspect the bearing")  # fmt: skip
    with conn.transaction():
        return alert_store.insert_alert(conn, a, actor="system", now=now)


def _statuses(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    return [
        (r[0], r[1], r[2])
        for r in conn.execute(
            "select c.name, n.kind, n.status from notifications n"
            " join notification_channels c on c.id = n.channel_id order by n.id"
        )
    ]


def test_email_over_starttls_with_auth_reaches_the_smtp_server(
    conn: psycopg.Connection, smtp_server: SmtpServer
) -> None:
    ch = ns.create_channel(
        conn, name="planner", kind="email", target="planner@plant.test", actor="t"
    )
    ns.create_rule(conn, name="site s1", channel_id=ch["id"], actor="t", site_id="s1")
    # queued in the alert's own transaction: a rolled-back alert leaves no notification
    with pytest.raises(RuntimeError), conn.transaction():
        a = alert_store.NewAlert(
            "s1-pump-001", "seal", "high", 0.9, 5.0, 1.0, 9.0, [], None, 1.0, "x"
        )
        alert_store.insert_alert(conn, a, actor="system", now=T0)
        assert conn.execute("select count(*) from notifications").fetchone() == (1,)
        raise RuntimeError("roll back")
    assert conn.execute("select count(*) from notifications").fetchone() == (0,)
    alert = _raise(conn)
    before = len(smtp_server.messages)
    cfg = NotifySettings(**smtp_server.settings(dashboard_url="http://dash.test:8501"))
    with httpx.Client() as client:
        assert deliver_notifications(conn, cfg, client, policy=LOOPBACK) == (1, 0)
    msg = smtp_server.wait_for(before + 1)[-1]
    assert msg["To"] == "planner@plant.test" and msg["From"] == "forewarn@plant.test"
    assert f"alert #{alert['id']}" in msg["Subject"] and "bearing" in msg["Subject"]
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert "Failure probability: 87%" in text and "Time to failure: 30 h (20–44 h)" in text
    assert f"http://dash.test:8501/alerts?alert={alert['id']}" in text
    assert "None" not in text
    assert "forewarn" in smtp_server.logins
    log = ns.delivery_log(conn, alert_id=alert["id"])
    assert [(n["status"], n["attempts"], [t["ok"] for t in n["log"]]) for n in log] == [
        ("delivered", 1, [True])
    ]


def test_smtp_wrong_password_is_retried_and_logged_as_failed(
    conn: psycopg.Connection, smtp_server: SmtpServer
) -> None:
    ch = ns.create_channel(conn, name="ops", kind="email", target="ops@plant.test", actor="t")
    ns.create_rule(conn, name="all", channel_id=ch["id"], actor="t")
    _raise(conn)
    cfg = NotifySettings(**smtp_server.settings(smtp_password="wrong", attempts=2))
    with httpx.Client() as client:
        assert deliver_notifications(conn, cfg, client, policy=LOOPBACK, backoff_s=0.01) == (0, 1)
    (n,) = ns.delivery_log(conn)
    assert n["status"] == "failed" and n["attempts"] == 2
    assert all("SMTPAuthenticationError" in t["error"] for t in n["log"])


def test_teams_slack_and_signed_webhook_formats(
    conn: psycopg.Connection, http_receiver: HttpReceiver
) -> None:
    base = http_receiver.url
    for kind in ("teams", "slack"):
        ch = ns.create_channel(conn, name=kind, kind=kind, target=f"{base}/{kind}", actor="t")
        ns.create_rule(conn, name=kind, channel_id=ch["id"], actor="t")
    wh = ns.create_channel(conn, name="cmms", kind="webhook", target=f"{base}/wh", secret="k3y",
                           actor="t")  # fmt: skip
    ns.create_rule(conn, name="cmms", channel_id=wh["id"], actor="t")
    alert = _raise(conn)
    cfg = NotifySettings(dashboard_url="http://dash.test")
    with httpx.Client() as client:
        assert deliver_notifications(conn, cfg, client, policy=LOOPBACK) == (3, 0)
    posts = {p: (h, b) for p, h, b in http_receiver.wait_for(3)}

    teams = json.loads(posts["/teams"][1])
    assert teams["type"] == "message"
    (att,) = teams["attachments"]
    assert att["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = att["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0]["type"] == "TextBlock" and f"#{alert['id']}" in card["body"][0]["text"]
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Severity"] == "high" and facts["Failure probability"] == "87%"
    assert card["actions"][0]["url"] == f"http://dash.test/alerts?alert={alert['id']}"

    slack = json.loads(posts["/slack"][1])
    assert f"#{alert['id']}" in slack["text"]  # the notification fallback
    header, section, actions = slack["blocks"]
    assert header["type"] == "header" and len(header["text"]["text"]) <= 150
    assert section["type"] == "section" and 1 <= len(section["fields"]) <= 10
    assert all(len(f["text"]) <= 2000 and f["type"] == "mrkdwn" for f in section["fields"])
    assert "*Failure mode*\nbearing" in [f["text"] for f in section["fields"]]
    assert actions["elements"][0]["url"].endswith(f"alert={alert['id']}")

    headers, body = posts["/wh"]
    assert verify_signature("k3y", headers["x-forewarn-timestamp"], body,
                            headers["x-forewarn-signature"], now=datetime.now(UTC).timestamp())  # fmt: skip
    assert json.loads(body)["alert"]["id"] == alert["id"]


def test_http_receiver_down_is_retried_then_failed(
    conn: psycopg.Connection, http_receiver: HttpReceiver
) -> None:
    ch = ns.create_channel(conn, name="teams", kind="teams", target=f"{http_receiver.url}/fail",
                           actor="t")  # fmt: skip
    ns.create_rule(conn, name="r", channel_id=ch["id"], actor="t")
    _raise(conn)
    with httpx.Client() as client:
        result = deliver_notifications(
            conn, NotifySettings(attempts=3), client, policy=LOOPBACK, backoff_s=0.01
        )
    assert result == (0, 1)
    assert len(http_receiver.posts) == 3
    (n,) = ns.delivery_log(conn)
    assert [t["status_code"] for t in n["log"]] == [500, 500, 500]
    assert all(t["error"].startswith("HTTP 500") for t in n["log"])


def test_rules_route_by_site_line_type_severity_and_mode(conn: psycopg.Connection) -> None:
    upsert_registry(conn, make_registry(2, site="s2"))
    mk = {n: ns.create_channel(conn, name=n, kind="email", target=f"{n}@p.test", actor="t")["id"]
          for n in ("site2", "line1", "pumps", "critical", "seal")}  # fmt: skip
    ns.create_rule(conn, name="site2", channel_id=mk["site2"], actor="t", site_id="s2")
    ns.create_rule(conn, name="line1", channel_id=mk["line1"], actor="t", line_id="s1-l1")
    ns.create_rule(conn, name="pumps", channel_id=mk["pumps"], actor="t", type_id="pump")
    ns.create_rule(conn, name="crit", channel_id=mk["critical"], actor="t", min_severity="critical")
    ns.create_rule(conn, name="seal", channel_id=mk["seal"], actor="t", mode="seal",
                   events=["alert.raised", "alert.acknowledged"])  # fmt: skip
    _raise(conn, "s1-pump-000", severity="high", mode="bearing")
    assert {c for c, _, _ in _statuses(conn)} == {"line1", "pumps"}
    conn.execute("delete from notifications")
    a = _raise(conn, "s2-pump-001", severity="critical", mode="seal")
    assert {c for c, _, _ in _statuses(conn)} == {"site2", "pumps", "critical", "seal"}
    conn.execute("delete from notifications")
    with conn.transaction():
        alert_store.transition(conn, a["id"], "acknowledged", actor="op", reason="", now=T0)
    assert _statuses(conn) == [("seal", "event", "pending")]
    with pytest.raises(ValueError, match="min_severity"):
        ns.create_rule(conn, name="bad", channel_id=mk["seal"], actor="t", min_severity="huge")


def test_reminders_repeat_until_acknowledged_and_escalate(conn: psycopg.Connection) -> None:
    first = ns.create_channel(conn, name="shift", kind="email", target="shift@p.test", actor="t")
    second = ns.create_channel(conn, name="manager", kind="email", target="boss@p.test", actor="t")
    ns.create_rule(conn, name="r", channel_id=first["id"], actor="t", remind_every_s=600,
                   escalate_after_s=1800, escalate_channel_id=second["id"])  # fmt: skip
    alert = _raise(conn, now=T0)
    seen = []
    for minutes in (5, 10, 15, 20, 30, 31):
        with conn.transaction():
            due = ns.enqueue_due(conn, now=T0 + timedelta(minutes=minutes))
        seen.append((minutes, due["reminders"], due["escalations"]))
    assert seen == [(5, 0, 0), (10, 1, 0), (15, 0, 0), (20, 1, 0), (30, 1, 1), (31, 0, 0)]
    with conn.transaction():
        alert_store.transition(conn, alert["id"], "acknowledged", actor="op", reason="",
                               now=T0 + timedelta(minutes=32))  # fmt: skip
        assert ns.enqueue_due(conn, now=T0 + timedelta(hours=5))["reminders"] == 0
    kinds = [(c, k) for c, k, _ in _statuses(conn)]
    assert kinds == [("shift", "event")] + [("shift", "reminder")] * 3 + [("manager", "escalation")]


def test_mute_window_suppresses_notifications_not_alerts(conn: psycopg.Connection) -> None:
    ch = ns.create_channel(conn, name="shift", kind="email", target="shift@p.test", actor="t")
    ns.create_rule(conn, name="r", channel_id=ch["id"], actor="t", remind_every_s=3600)
    ns.create_mute(conn, scope="line", scope_id="s1-l1", starts_at=T0 - timedelta(hours=1),
                   ends_at=T0 + timedelta(hours=2), reason="planned overhaul", actor="t")  # fmt: skip
    with pytest.raises(ValueError, match="ends after"):
        ns.create_mute(conn, scope="site", scope_id="s1", starts_at=T0, ends_at=T0, reason="",
                       actor="t")  # fmt: skip
    alert = _raise(conn, now=T0)
    assert conn.execute("select status from alerts where id = %s", (alert["id"],)).fetchone() == (
        "open",
    )  # the alert is raised as usual
    with conn.transaction():
        ns.enqueue_due(conn, now=T0 + timedelta(hours=1))  # reminder inside the window: muted
        ns.enqueue_due(conn, now=T0 + timedelta(hours=2))  # the window ended: sent
    assert _statuses(conn) == [
        ("shift", "event", "muted"),
        ("shift", "reminder", "muted"),
        ("shift", "reminder", "pending"),
    ]
    other = _raise(conn, "s1-pump-002", now=T0 + timedelta(hours=3))
    assert ns.delivery_log(conn, alert_id=other["id"])[0]["status"] == "pending"


def test_daily_digest_once_per_day_per_recipient(conn: psycopg.Connection) -> None:
    ch = ns.create_channel(conn, name="planner", kind="email", target="p@p.test", actor="t",
                           digest_hour=7)  # fmt: skip
    ns.create_rule(conn, name="pumps-critical", channel_id=ch["id"], actor="t",
                   min_severity="critical", events=["alert.escalated"])  # fmt: skip
    _raise(conn, "s1-pump-000", severity="critical", now=T0 - timedelta(hours=3))
    _raise(conn, "s1-pump-001", severity="low", now=T0 - timedelta(hours=2))
    counts = []
    for t in (T0.replace(hour=6), T0.replace(hour=7, minute=30), T0.replace(hour=9)):
        with conn.transaction():
            counts.append(ns.enqueue_due(conn, now=t)["digests"])
    assert counts == [0, 1, 0]
    (d,) = [n for n in ns.delivery_log(conn) if n["kind"] == "digest"]
    assert d["subject"] == "[Forewarn] Daily digest 2026-03-02: 1 alerts in 24 h"


def test_assignment_and_comments_are_audited_and_notify_the_person(
    conn: psycopg.Connection,
) -> None:
    ada = create_user(conn, name="Ada Lovelace", email="ada@p.test", role="operator",
                      password="long-enough-pw", actor="admin")  # fmt: skip
    ns.create_channel(conn, name="ada-mail", kind="email", target="ada@p.test", actor="t",
                      user_id=ada["id"])  # fmt: skip
    alert = _raise(conn)
    with conn.transaction():
        people = assign_alert(conn, alert["id"], ada["id"], actor="Grace Hopper", now=T0)
    assert people["assignee"]["name"] == "Ada Lovelace"
    with conn.transaction():
        comment_alert(conn, alert["id"], "Bearing noise confirmed", actor="Grace Hopper", now=T0)
        comment_alert(conn, alert["id"], "Ordered the part", actor="Ada Lovelace", now=T0)
    history = conn.execute(
        "select actor, reason from alert_transitions where alert_id = %s order by id",
        (alert["id"],),
    ).fetchall()
    assert history[1:] == [
        ("Grace Hopper", "assigned to Ada Lovelace"),
        ("Grace Hopper", "commented"),
        ("Ada Lovelace", "commented"),
    ]
    # the assignee hears of the assignment and of others' comments, not of their own
    assert [(c, k) for c, k, _ in _statuses(conn)] == [
        ("ada-mail", "assignment"),
        ("ada-mail", "comment"),
    ]


def test_internal_destinations_are_refused_at_delivery(conn: psycopg.Connection) -> None:
    ch = ns.create_channel(conn, name="meta", kind="slack", actor="t",
                           target="http://169.254.169.254/latest/meta-data")  # fmt: skip
    ns.create_rule(conn, name="r", channel_id=ch["id"], actor="t")
    _raise(conn)
    with httpx.Client() as client:
        result = deliver_notifications(conn, NotifySettings(attempts=1), client,
                                       policy=EgressPolicy(allow_http=True))  # fmt: skip
    assert result == (0, 1)
    (n,) = ns.delivery_log(conn)
    assert n["log"][0]["error"].startswith("refused")

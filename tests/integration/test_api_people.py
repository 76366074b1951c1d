"""API for people and notifications: accounts, assignment and comments, channels, rules, mutes, log."""

from __future__ import annotations

from datetime import UTC, datetime

from forewarn.storage import alerts as alert_store
from tests.fixtures.app import ApiEnv

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _alert(env: ApiEnv) -> int:
    with env.conn() as conn, conn.transaction():
        a = alert_store.NewAlert("s1-pump-000", "bearing", "high", 0.8, 20.0, 10.0, 30.0, [], None,
                                 1.0, "Inspect")  # fmt: skip
        return int(alert_store.insert_alert(conn, a, actor="system", now=T0)["id"])


def test_admin_creates_users_and_others_may_not(api_env: ApiEnv) -> None:
    c = api_env.client
    body = {"name": "Ada Lovelace", "email": "ada@plant.test", "role": "operator",
            "password": "correct horse battery"}  # fmt: skip
    assert c.post("/v1/users", json=body, headers=api_env.h("operator")).status_code == 403
    r = c.post("/v1/users", json=body, headers=api_env.h())
    assert r.status_code == 201, r.text
    user = r.json()
    assert user["name"] == "Ada Lovelace" and "password" not in user and "password_hash" not in user
    assert c.post("/v1/users", json=body, headers=api_env.h()).status_code == 409
    short = body | {"email": "b@plant.test", "password": "short"}
    assert c.post("/v1/users", json=short, headers=api_env.h()).status_code == 422
    bad = body | {"email": "not-an-address"}
    assert c.post("/v1/users", json=bad, headers=api_env.h()).status_code == 422
    with api_env.conn() as conn:
        stored = conn.execute(
            "select password_hash from users where id = %s", (user["id"],)
        ).fetchone()
    assert stored is not None and stored[0].startswith("$argon2id$")
    assert [u["email"] for u in c.get("/v1/users", headers=api_env.h()).json()] == [
        "ada@plant.test"
    ]
    assert c.delete(f"/v1/users/{user['id']}", headers=api_env.h()).status_code == 204


def test_assign_and_comment_through_the_api_are_audited(api_env: ApiEnv) -> None:
    c = api_env.client
    user = c.post("/v1/users", headers=api_env.h(), json={"name": "Ada", "email": "ada@p.test",
                  "role": "operator", "password": "0123456789ab"}).json()  # fmt: skip
    alert_id = _alert(api_env)
    r = c.post(f"/v1/alerts/{alert_id}/assign", json={"user_id": user["id"]},
               headers=api_env.h("operator"))  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["assignee"]["name"] == "Ada"
    r = c.post(f"/v1/alerts/{alert_id}/comments", json={"body": "On my way"},
               headers=api_env.h("maintenance"))  # fmt: skip
    assert r.status_code == 201
    assert [x["body"] for x in r.json()["comments"]] == ["On my way"]
    assert c.post(f"/v1/alerts/{alert_id}/comments", json={"body": ""},
                  headers=api_env.h()).status_code == 422  # fmt: skip
    assert c.post(f"/v1/alerts/{alert_id}/assign", json={"user_id": 999},
                  headers=api_env.h()).status_code == 404  # fmt: skip
    assert c.post("/v1/alerts/999999/comments", json={"body": "x"},
                  headers=api_env.h()).status_code == 404  # fmt: skip
    assert c.post(f"/v1/alerts/{alert_id}/assign", json={"user_id": None},
                  headers=api_env.h("viewer")).status_code == 403  # fmt: skip
    reasons = [
        (t["actor"], t["reason"])
        for t in c.get(f"/v1/alerts/{alert_id}", headers=api_env.h()).json()["transitions"]
    ]
    assert reasons[1:] == [("test-operator", "assigned to Ada"), ("test-maintenance", "commented")]
    people = c.get(f"/v1/alerts/{alert_id}/people", headers=api_env.h("viewer")).json()
    assert people["assignee"]["email"] == "ada@p.test"


def test_channels_rules_mutes_and_the_delivery_log(api_env: ApiEnv) -> None:
    c, h = api_env.client, api_env.h()
    ch = c.post("/v1/notifications/channels", headers=h,
                json={"name": "shift", "kind": "email", "target": "shift@p.test"})  # fmt: skip
    assert ch.status_code == 201, ch.text
    teams = c.post("/v1/notifications/channels", headers=h, json={"name": "teams", "kind": "teams",
                   "target": "https://example.test/workflows/x"}).json()  # fmt: skip
    bad = c.post("/v1/notifications/channels", headers=h,
                 json={"name": "x", "kind": "slack", "target": "not a url"})  # fmt: skip
    assert bad.status_code == 422
    rule = c.post("/v1/notifications/rules", headers=h, json={
        "name": "site s1 high", "channel_id": ch.json()["id"], "site_id": "s1",
        "min_severity": "high", "remind_every_s": 900,
        "escalate_after_s": 3600, "escalate_channel_id": teams["id"]})  # fmt: skip
    assert rule.status_code == 201, rule.text
    half = {"name": "half", "channel_id": ch.json()["id"], "escalate_after_s": 600}
    assert c.post("/v1/notifications/rules", headers=h, json=half).status_code == 422
    missing = {"name": "nochan", "channel_id": 424242}
    assert c.post("/v1/notifications/rules", headers=h, json=missing).status_code == 404
    mute = {"scope": "machine", "scope_id": "s1-pump-002", "starts_at": "2026-03-01T00:00:00Z",
            "ends_at": "2026-03-03T00:00:00Z", "reason": "overhaul"}  # fmt: skip
    assert c.post("/v1/notifications/mutes", headers=h, json=mute).status_code == 201
    unknown = mute | {"scope_id": "nope"}
    assert c.post("/v1/notifications/mutes", headers=h, json=unknown).status_code == 404
    backwards = mute | {"ends_at": "2026-02-01T00:00:00Z"}
    assert c.post("/v1/notifications/mutes", headers=h, json=backwards).status_code == 422
    alert_id = _alert(api_env)
    log = c.get("/v1/notifications", headers=h, params={"alert_id": alert_id}).json()
    assert [(n["channel"], n["kind"], n["status"]) for n in log] == [("shift", "event", "pending")]
    assert c.get("/v1/notifications", headers=api_env.h("operator")).status_code == 403


def test_cli_creates_a_user_with_a_generated_password_that_logs_in(
    db_url: str, monkeypatch
) -> None:
    import json

    import psycopg
    from typer.testing import CliRunner

    from forewarn.cli import app
    from forewarn.storage.people import authenticate

    monkeypatch.setenv("FOREWARN_DB__URL", db_url)
    args = [
        "users",
        "create",
        "--name",
        "Grace Hopper",
        "--email",
        "grace@p.test",
        "--role",
        "admin",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    with psycopg.connect(db_url) as conn:
        person = authenticate(conn, "GRACE@p.test", out["password"], now=T0)
        assert person is not None and person.name == "Grace Hopper" and person.role == "admin"
        assert authenticate(conn, "grace@p.test", out["password"] + "x", now=T0) is None
    bad = CliRunner().invoke(app, [*args[:5], "g2@p.test", "--role", "root"])
    assert bad.exit_code != 0

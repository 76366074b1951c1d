"""Alerts end to end (predictions -> runner -> poll -> acknowledge -> resolve) and cursor semantics."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import psycopg
from psycopg.types.json import Jsonb

from forewarn.orders import command_payload
from forewarn.storage import alerts as store
from models.runners.alerting import run_alerting_loop, run_alerting_once, update_cost_thresholds
from tests.factories import T0
from tests.fixtures.app import ApiEnv

M = "s1-pump-000"


def add_predictions(
    conn: psycopg.Connection, machine: str, probs: list[float], *, start_s: int = 0, **kw: object
) -> None:
    for i, p in enumerate(probs):
        conn.execute(
            "insert into predictions (machine_id, ts, role, model_version_id, failure_prob, rul_h,"
            " rul_low_h, rul_high_h, mode, contributions, data_quality)"
            " values (%s, %s, 'champion', null, %s, %s, %s, %s, %s, %s, %s)",
            (
                machine,
                T0 + timedelta(seconds=start_s + 5 * i),
                p,
                kw.get("rul_h", 20.0),
                10.0,
                30.0,
                kw.get("mode", "bearing"),
                Jsonb({"vibration_rms_mean": 0.4, "bearing_temp_slope": 0.2}),
                kw.get("quality", "ok"),
            ),
        )


def test_alert_raised_from_predictions_polled_acknowledged_resolved(api_env: ApiEnv) -> None:
    env, c = api_env, api_env.client
    now = T0 + timedelta(seconds=60)
    with env.conn() as conn:
        add_predictions(conn, M, [0.9, 0.92])  # k=3: not yet
        assert run_alerting_once(conn, env.settings, now) == 0
        add_predictions(conn, M, [0.95], start_s=10)  # third consecutive high, after a "restart"
        assert run_alerting_once(conn, env.settings, now) == 1
        add_predictions(conn, M, [0.96, 0.97], start_s=15)  # de-dup: still one alert
        assert run_alerting_once(conn, env.settings, now) == 0

    page = c.get("/v1/alerts/changes", params={"cursor": 0}, headers=env.h("maintenance")).json()
    assert len(page["alerts"]) == 1
    alert = page["alerts"][0]
    assert alert["machine_id"] == M and alert["mode"] == "bearing" and alert["status"] == "open"
    assert alert["severity"] == "critical"  # p >= 0.9 and 20 h to failure
    assert alert["ttf_h"] == 20.0 and alert["ttf_low_h"] == 10.0 and alert["ttf_high_h"] == 30.0
    assert alert["contributions"]["vibration_rms_mean"] == 0.4
    assert alert["inputs_age_s"] == 50.0
    assert "bearing" in alert["recommended_action"]
    cursor = page["next_cursor"]
    empty = c.get(
        "/v1/alerts/changes", params={"cursor": cursor}, headers=env.h("maintenance")
    ).json()
    assert empty == {"alerts": [], "next_cursor": cursor, "has_more": False}

    aid = alert["id"]
    r = c.post(
        f"/v1/alerts/{aid}/acknowledge", json={"reason": "WO-1"}, headers=env.h("maintenance")
    )
    assert (
        r.status_code == 200 and r.json()["status"] == "acknowledged" and r.json()["version"] == 2
    )
    again = c.post(f"/v1/alerts/{aid}/acknowledge", json={}, headers=env.h("maintenance"))
    assert again.status_code == 200 and again.json()["version"] == 2  # idempotent
    stale = c.post(
        f"/v1/alerts/{aid}/resolve",
        json={"action": "repair", "expected_version": 1},
        headers=env.h("maintenance"),
    )
    assert stale.status_code == 409 and "version 2" in stale.json()["detail"]

    changed = c.get(
        "/v1/alerts/changes", params={"cursor": cursor}, headers=env.h("maintenance")
    ).json()
    assert [a["status"] for a in changed["alerts"]] == ["acknowledged"]

    body = {"action": "preventive", "note": "bearing replaced", "expected_version": 2}
    h = env.h("maintenance", **{"Idempotency-Key": "wo-1-resolve"})
    r1 = c.post(f"/v1/alerts/{aid}/resolve", json=body, headers=h)
    r2 = c.post(f"/v1/alerts/{aid}/resolve", json=body, headers=h)  # a retry after a lost response
    assert r1.status_code == r2.status_code == 200 and r1.json() == r2.json()
    assert r1.json()["status"] == "resolved"
    other = c.post(f"/v1/alerts/{aid}/resolve", json={"action": "repair"}, headers=h)
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]
    assert (
        c.post(
            f"/v1/alerts/{aid}/dismiss", json={"reason": "x"}, headers=env.h("operator")
        ).status_code
        == 409
    )

    # one maintenance event and one maintenance order for the simulator
    with env.conn() as conn:
        ev = conn.execute(
            "select event, kind, mode, detail from machine_events where machine_id = %s", (M,)
        ).fetchall()
    assert len(ev) == 1 and ev[0][:3] == ("maintenance", "preventive", "bearing")
    assert ev[0][3]["alert_id"] == aid
    assert env.published == [
        (
            f"forewarn/v1/s1/{M}/command",
            command_payload("preventive", aid),
        )
    ]
    detail = c.get(f"/v1/alerts/{aid}", headers=env.h("viewer")).json()
    assert [(t["from_status"], t["to_status"], t["actor"]) for t in detail["transitions"]] == [
        (None, "open", "system"),
        ("open", "acknowledged", "test-maintenance"),
        ("acknowledged", "resolved", "test-maintenance"),
    ]
    assert detail["transitions"][1]["reason"] == "WO-1"
    listed = c.get(
        "/v1/alerts", params={"status": ["resolved"], "machine_id": M}, headers=env.h("viewer")
    ).json()
    assert [a["id"] for a in listed["alerts"]] == [aid]
    machines = c.get("/v1/machines", params={"order": "risk"}, headers=env.h("viewer")).json()
    assert machines[0]["id"] == M and machines[0]["risk"]["failure_prob"] == 0.97


def test_hysteresis_clears_and_low_quality_does_not_alert(api_env: ApiEnv) -> None:
    env = api_env
    now = T0 + timedelta(seconds=100)
    with env.conn() as conn:
        # stale (older than stale_after_s at now), out of range and scorer-flagged predictions
        stale_s = -int(env.settings.models.stale_after_s) - 2000
        add_predictions(conn, "s1-pump-001", [0.9, 0.9, 0.9], start_s=stale_s)
        add_predictions(conn, "s1-pump-002", [1.5, 0.9, 0.9], start_s=0, quality="ok")
        add_predictions(conn, "s1-pump-002", [0.9], start_s=15, quality="missing_inputs")
        assert run_alerting_once(conn, env.settings, now) == 0
        flags = dict(
            conn.execute("select machine_id || ts::text, data_quality from predictions").fetchall()
        )
        assert sorted(set(flags.values())) == ["missing_inputs", "ok", "out_of_range", "stale"]
        # high, high, high -> raise; 0.5 keeps it; 0.1 clears the unacknowledged alert
        add_predictions(conn, M, [0.8, 0.8, 0.8, 0.5, 0.1])
        assert run_alerting_once(conn, env.settings, now) == 1
        status, reason = conn.execute(
            "select a.status, t.reason from alerts a join alert_transitions t on t.alert_id = a.id"
            " where t.to_status = 'cleared'"
        ).fetchone()
        assert status == "cleared" and reason.startswith("cleared")  # the engine, not a person
        assert conn.execute(
            "select active, consecutive_high from alert_state where machine_id = %s", (M,)
        ).fetchone() == (False, 0)


def add_event(
    conn: psycopg.Connection, machine: str, at_s: int, event: str, seq: int, **detail: object
) -> None:
    """A plant event (positive seq, as the machine sent it) at T0 + at_s."""
    conn.execute(
        "insert into machine_events (machine_id, seq, ts, event, mode, detail)"
        " values (%s, %s, %s, %s, %s, %s)",
        (
            machine,
            seq,
            T0 + timedelta(seconds=at_s),
            event,
            detail.pop("mode", None),
            Jsonb(detail),
        ),
    )


def test_alerts_follow_the_machine(api_env: ApiEnv) -> None:
    """A failure closes the open alert as failed with its outcome; a stopped or failed machine gets
    no alert about the past; maintenance clears; the API shows who ended each alert."""
    env, c = api_env, api_env.client
    hours = 3600
    with env.conn() as conn:
        # alert raised at T0+1h on data of T0; the machine fails 30 h later: warned in time
        add_predictions(conn, M, [0.9, 0.9, 0.9])
        assert run_alerting_once(conn, env.settings, T0 + timedelta(hours=1)) == 1
        add_event(conn, M, 31 * hours, "failure", 1, mode="bearing")
        add_event(conn, M, 31 * hours, "state", 2, state="down")
        run_alerting_once(conn, env.settings, T0 + timedelta(hours=31))
        # data from before the failure, processed after it: no alert (it would be about the past)
        add_predictions(conn, M, [0.9, 0.9, 0.9, 0.9], start_s=30 * hours)
        assert run_alerting_once(conn, env.settings, T0 + timedelta(hours=32)) == 0
        # the machine is still down: no alert even on data after the failure
        add_predictions(conn, M, [0.95, 0.95, 0.95], start_s=32 * hours)
        assert run_alerting_once(conn, env.settings, T0 + timedelta(hours=33)) == 0
        # another machine: raised, then scheduled maintenance starts -> cleared by the engine
        other = "s1-pump-001"
        add_predictions(conn, other, [0.9, 0.9, 0.9])
        assert run_alerting_once(conn, env.settings, T0 + timedelta(hours=1)) == 1
        add_event(conn, other, 2 * hours, "state", 1, state="maintenance")
        run_alerting_once(conn, env.settings, T0 + timedelta(hours=2))
    alerts = c.get("/v1/alerts", headers=env.h("viewer")).json()["alerts"]
    by_machine = {a["machine_id"]: a for a in alerts}
    assert len(alerts) == 2
    assert by_machine[M]["status"] == "failed" and by_machine[other]["status"] == "cleared"
    detail = c.get(f"/v1/alerts/{by_machine[M]['id']}", headers=env.h("viewer")).json()
    last = detail["transitions"][-1]
    assert last["actor"] == "system" and last["detail"]["outcome"] == "caught_in_time"
    assert last["detail"]["failure_mode"] == "bearing"
    failed = c.get("/v1/alerts", params={"status": "failed"}, headers=env.h("viewer")).json()
    assert [a["id"] for a in failed["alerts"]] == [by_machine[M]["id"]]
    # a closed alert cannot be acted on any more
    r = c.post(
        f"/v1/alerts/{by_machine[M]['id']}/resolve",
        json={"action": "repair"},
        headers=env.h("maintenance"),
    )
    assert r.status_code == 409


def test_escalation_after_configured_time(api_env: ApiEnv) -> None:
    env = api_env
    with env.conn() as conn:
        add_predictions(conn, M, [0.9, 0.9, 0.9])
        t_raise = T0 + timedelta(seconds=30)
        run_alerting_once(conn, env.settings, t_raise)
        later = t_raise + timedelta(seconds=env.settings.api.escalate_after_s - 1)
        run_alerting_once(conn, env.settings, later)
        assert conn.execute("select escalated_at from alerts").fetchone() == (None,)
        run_alerting_once(conn, env.settings, later + timedelta(seconds=2))
        assert conn.execute("select escalated_at is not null, version from alerts").fetchone() == (
            True,
            2,
        )


def test_cursor_has_no_gap_and_no_repeat_under_concurrent_writers(api_env: ApiEnv) -> None:
    env = api_env
    writers, per_writer = 4, 25
    done = threading.Event()
    errors: list[BaseException] = []

    def write(w: int) -> None:
        rnd = random.Random(w)
        try:
            with psycopg.connect(env.url) as conn:
                for i in range(per_writer):
                    with conn.transaction():
                        a = store.NewAlert(
                            f"s1-pump-00{w % 3}",
                            f"mode-{w}-{i}",
                            "high",
                            0.9,
                            None,
                            None,
                            None,
                            {},
                            None,
                            0.0,
                            "inspect",
                        )
                        row = store.insert_alert(conn, a, actor="test", now=T0)
                        # hold the transaction open a little: commits then land out of start order
                        conn.execute("select pg_sleep(%s)", (rnd.random() * 0.003,))
                    if rnd.random() < 0.5:
                        with conn.transaction():
                            store.transition(
                                conn, row["id"], "acknowledged", actor="test", reason="", now=T0
                            )
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    seen: list[tuple[int, int]] = []
    latest: dict[int, tuple[int, str]] = {}

    def poll(cursor: int) -> int:
        page = env.client.get(
            "/v1/alerts/changes",
            params={"cursor": cursor, "limit": 7},
            headers=env.h("maintenance"),
        ).json()
        for a in page["alerts"]:
            seen.append((a["id"], a["change_seq"]))
            latest[a["id"]] = (a["version"], a["status"])
        return int(page["next_cursor"])

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    cursor = 0
    while any(t.is_alive() for t in threads):
        cursor = poll(cursor)
    for t in threads:
        t.join()
    done.set()
    while True:
        nxt = poll(cursor)
        if nxt == cursor:
            break
        cursor = nxt
    assert not errors
    seqs = [s for _, s in seen]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # no repeat, in order
    with env.conn() as conn:
        final = {r[0]: (r[1], r[2]) for r in conn.execute("select id, version, status from alerts")}
    assert len(final) == writers * per_writer
    assert latest == final  # no gap: every alert's last change reached the poller


def test_cost_aware_policy_from_history_is_proposed_promoted_and_drives_the_runner(
    api_env: ApiEnv,
) -> None:
    env, c = api_env, api_env.client
    with env.conn() as conn:
        # history on s1-pump-001: three scores of 0.45 then a failure 10 h later, in each of six
        # cycles of ten scores 100 h apart; every other score is 0
        for i in range(60):
            p = 0.45 if i % 10 in (3, 4, 5) else 0.0
            ts = T0 + timedelta(hours=100 * i)
            conn.execute(
                "insert into predictions (machine_id, ts, role, failure_prob, mode) values (%s, %s, 'champion', %s, 'bearing')",
                ("s1-pump-001", ts, p),
            )
            if i % 10 == 5:
                conn.execute(
                    "insert into machine_events (machine_id, seq, ts, event, mode) values (%s, %s, %s, 'failure', 'bearing')",
                    ("s1-pump-001", i, ts + timedelta(hours=10)),
                )
        out = update_cost_thresholds(conn, env.settings, T0)
        # counted per alert (k=3): one true alert per cycle, not one per high score; ties go higher
        assert out["types"]["pump"]["source"] == "cost" and out["types"]["pump"]["high"] == 0.45
        assert out["types"]["pump"]["expected_savings"] == 6 * 14050
        version = out["version"]
        # proposed, not live: the settings' 0.6 still applies
        conn.execute("delete from predictions")
        add_predictions(conn, M, [0.5, 0.5, 0.5])
        assert run_alerting_once(conn, env.settings, T0 + timedelta(seconds=30)) == 0
        conn.execute("delete from alert_state")
    # an operator may not promote; an admin may (audited), and the next pass uses it
    body = {"version": version}
    assert c.post("/v1/policy/promote", json=body, headers=env.h("operator")).status_code == 403
    assert (
        c.post("/v1/policy/promote", json={"version": 10**9}, headers=env.h("admin")).status_code
        == 404
    )
    r = c.post("/v1/policy/promote", json=body, headers=env.h("admin"))
    assert r.status_code == 200 and r.json()["version"] == version
    shown = c.get("/v1/policy", headers=env.h("viewer")).json()
    assert shown["version"] == version and shown["policy"]["types"]["pump"]["high"] == 0.45
    with env.conn() as conn:
        assert conn.execute(
            "select count(*) from audit_log where action = 'alert_policy.promote'"
        ).fetchone() == (1,)
        add_predictions(conn, M, [0.5, 0.5, 0.5], start_s=100)
        assert run_alerting_once(conn, env.settings, T0 + timedelta(seconds=200)) == 1
        assert conn.execute("select policy_version from alerts").fetchone() == (version,)


def test_alert_loop_runs_until_stopped(api_env: ApiEnv) -> None:
    env = api_env
    with env.conn() as conn:
        add_predictions(conn, M, [0.9, 0.9, 0.9], start_s=0)
    settings = env.settings.model_copy(
        update={"models": env.settings.models.model_copy(update={"stale_after_s": 1e12})}
    )
    stop = threading.Event()
    t = threading.Thread(
        target=run_alerting_loop,
        args=(settings, env.url),
        kwargs={"stop": stop, "interval_s": 0.05},
    )
    t.start()
    try:
        with env.conn() as conn:
            for _ in range(200):
                if conn.execute("select count(*) from alerts").fetchone() == (1,):
                    break
                stop.wait(0.05)
            assert conn.execute("select count(*) from alerts").fetchone() == (1,)
    finally:
        stop.set()
        t.join(timeout=10)
    assert not t.is_alive()

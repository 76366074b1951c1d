"""Backtest against the ground truth of a simulated plant, and the ROI storage (real PostgreSQL)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import psycopg
import pytest

from forewarn.factory import load_factory
from forewarn.storage import alerts as alert_store
from forewarn.storage import roi as roi_store
from forewarn.storage.assets import upsert_registry
from forewarn.storage.machines import roi_summary
from forewarn.storage.policies import get_policy
from models.roi import BacktestConfig, reprice
from models.runners.backtest import load_scores, run_backtest, write_history
from models.runners.holdout import train_and_score
from simulator.engine import run_history
from tests.factories import COSTS, T0, make_registry

MACHINES, DAYS, SEED = 10, 30, 3
CONFIG = BacktestConfig(horizon_h=48, min_lead_h=4, k=3, cooldown_h=24)


def test_backtest_counts_agree_with_the_simulator_record(db_url: str) -> None:
    factory = load_factory(machines=MACHINES)
    history = run_history(factory, DAYS * 24.0, SEED)
    start = factory.start
    split, end = start + timedelta(days=DAYS / 2), start + timedelta(days=DAYS)
    with psycopg.connect(db_url) as conn:
        upsert_registry(conn, factory.registry())
        conn.commit()
        write_history(conn, history.messages)
        train_and_score(conn, start=start, split=split, end=end, horizon_h=CONFIG.horizon_h)
        out = run_backtest(
            conn,
            window=(split, end),
            config=CONFIG,
            history_start=start,
            store=True,
            available_after_h=0.0,
        )
        stored = roi_store.latest_backtest(conn)
        scores_df = load_scores(conn, split, end, available_after_h=0.0)
    truth_f = [t for t in history.truth if t.event == "failure" and split < t.ts <= end]
    assert truth_f, "the simulated window should contain failures"
    # failures: per policy and per machine type, exactly the simulator's record
    for p in out["policies"].values():
        assert p["failures"] == len(truth_f)
        assert p["caught"] + p["missed"] == p["failures"]
    for type_id, per_policy in out["by_type"].items():
        expected = sum(1 for t in truth_f if t.type_id == type_id)
        assert {p["failures"] for p in per_policy.values()} == {expected}
    # catches, misses and false alarms: replayed independently from the ground truth
    repairs = {
        (t.machine, t.ts)
        for t in history.truth
        if t.event == "maintenance" and t.trigger == "failure"
    }
    lives: dict[str, list[tuple[datetime, datetime, bool]]] = {}
    for m, _ in factory.machines():
        begin = start
        ends = sorted(t.ts for t in history.truth if t.event == "failure" and t.machine == m.id)
        for f in ends:
            if f > end:
                break
            if f > split:
                lives.setdefault(m.id, []).append((begin, f, True))
            back = min((ts for mm, ts in repairs if mm == m.id and ts >= f), default=end)
            begin = back
        if begin < end:
            lives.setdefault(m.id, []).append((begin, end, False))
    scores: dict[str, list[tuple[datetime, float]]] = {}
    for r in scores_df.sort_values("ts").itertuples():
        scores.setdefault(r.machine_id, []).append((r.ts, float(r.failure_prob)))
    theta = out["threshold"] if out["threshold"] is not None else 0.5  # never: check at 0.5
    caught, missed, false = _replay(scores, lives, theta)
    row = next(r for r in out["curve"] if r["threshold"] == theta)
    assert (row["caught"], row["missed"], row["false_alarms"]) == (caught, missed, false)
    assert caught + missed == len(truth_f)
    assert caught + false > 0, "the replay should see alerts at the chosen threshold"
    # out of sample: tuned on earlier pieces only, scored on later ones; a proposal only when it
    # beats both baselines there, stored as a policy version with those figures
    oos = out["out_of_sample"]
    assert 0 < oos["failures"] < len(truth_f) + 1
    for fold in out["folds"]:
        assert fold["tuned_on"][1] <= fold["scored_on"][0]
    beats = oos["savings_vs_run_to_failure"] > 0 and oos["savings_vs_fixed_interval"] > 0
    assert (out["policy"] is not None) == beats
    if beats:
        with psycopg.connect(db_url) as conn:
            pol = get_policy(conn, out["policy"]["version"])
        assert pol is not None and pol["figures"]["out_of_sample"] == oos
    # stored for the alert engine and the API/dashboard
    assert stored is not None and stored["threshold"] == out["threshold"]
    assert stored["result"]["policies"]["predictive"]["failures"] == len(truth_f)


def _replay(
    scores: dict[str, list[tuple[datetime, float]]],
    lives: dict[str, list[tuple[datetime, datetime, bool]]],
    theta: float,
) -> tuple[int, int, int]:
    """(caught, missed, false alarms) replayed reading by reading with the alert policy written
    out by hand (k consecutive scores >= high raise once the cooldown since the last raise has
    passed; a score < low re-arms) over lives taken from the simulator's record: an independent
    count."""
    high, low = theta, theta * CONFIG.low_ratio
    caught = missed = false = 0
    for m, machine_lives in lives.items():
        for start, end, failed in machine_lives:
            n, active, quiet, outcome = 0, False, start - timedelta(days=1), "none"
            for ts, p in scores.get(m, []):
                if not start <= ts <= end:
                    continue
                if p < low:
                    n, active = 0, False
                    continue
                if p < high:
                    n = 0
                    continue
                n += 1
                if active or n < CONFIG.k or ts < quiet:
                    continue
                active, quiet = True, ts + timedelta(hours=CONFIG.cooldown_h)
                ttf_h = (end - ts).total_seconds() / 3600
                if failed and ttf_h <= CONFIG.horizon_h:
                    outcome = "caught" if ttf_h >= CONFIG.min_lead_h else "late"
                    break
                if failed or ttf_h >= CONFIG.horizon_h:
                    false += 1
            caught += outcome == "caught"
            missed += failed and outcome != "caught"
    return caught, missed, false


def _alert(conn: psycopg.Connection, machine: str, now: datetime) -> int:
    a = alert_store.NewAlert(
        machine_id=machine,
        mode="bearing",
        severity="high",
        failure_prob=0.9,
        ttf_h=20.0,
        ttf_low_h=None,
        ttf_high_h=None,
        contributions=None,
        model_version_id=None,
        inputs_age_s=0.0,
        recommended_action="fix",
    )
    return int(alert_store.insert_alert(conn, a, actor="system", now=now)["id"])


def test_live_ledger_and_what_if(db: psycopg.Connection) -> None:
    upsert_registry(db, make_registry(machines=3))
    m0, m1, m2 = (f"s1-pump-{i:03d}" for i in range(3))
    t = T0 + timedelta(days=1)
    a0, a1, a2 = (_alert(db, m, t) for m in (m0, m1, m2))
    later = t + timedelta(hours=2)
    alert_store.transition(
        db, a0, "resolved", actor="cmms", reason="", now=later, detail={"action": "preventive"}
    )
    alert_store.transition(db, a1, "dismissed", actor="op", reason="noise", now=later)
    alert_store.transition(
        db, a2, "resolved", actor="cmms", reason="", now=later, detail={"action": "repair"}
    )
    # m2 failed anyway 5 h after its repair: no credit
    db.execute(
        "insert into machine_events (machine_id, seq, ts, event, mode)"
        " values (%s, 1, %s, 'failure', 'bearing')",
        (m2, later + timedelta(hours=5)),
    )
    led = roi_store.ledger(db, since=T0, until=T0 + timedelta(days=3))
    c = COSTS
    avoided = (c.repair_cost + c.repair_hours * c.downtime_cost_per_h) - (
        c.inspection_cost + c.planned_maintenance_cost + c.planned_hours * c.downtime_cost_per_h
    )
    tot = led["totals"]
    assert tot["avoided_failures"] == 1 and tot["false_alarms"] == 2
    assert tot["cost_avoided"] == pytest.approx(avoided)
    assert tot["downtime_avoided_h"] == pytest.approx(c.repair_hours - c.planned_hours)
    assert tot["net_savings"] == pytest.approx(avoided - 2 * c.inspection_cost)
    assert [e["outcome"] for e in led["entries"]] == ["avoided", "false_alarm", "false_alarm"]
    # the summary prices with the same money module: two resolved, one dismissed, one failure
    summ = roi_summary(db, since=T0, until=T0 + timedelta(days=3))
    assert (summ["resolved"], summ["dismissed"], summ["failures"]) == (2, 1, 1)
    assert summ["estimated_savings"] == pytest.approx(2 * avoided - c.inspection_cost)
    assert summ["failure_cost"] == pytest.approx(
        c.repair_cost + c.repair_hours * c.downtime_cost_per_h
    )
    assert (
        roi_store.latest_backtest(db) is None
        and reprice(roi_store.backtest_summary(db), {}) is None
    )


def test_stored_backtest_what_if(db: psycopg.Connection) -> None:
    import pandas as pd

    from models.roi import backtest

    upsert_registry(db, make_registry(machines=1))
    m = "s1-pump-000"
    hours = [h for h in range(0, 400) if not 100 <= h < 112]
    f = pd.DataFrame({"machine_id": [m], "ts": [T0 + timedelta(hours=100)], "mode": ["bearing"]})
    s = pd.DataFrame(
        {
            "machine_id": m,
            "ts": [T0 + timedelta(hours=h) for h in hours],
            "failure_prob": [0.9 if 80 <= h <= 82 else 0.1 for h in hours],
        }
    )
    window = (T0, T0 + timedelta(hours=400))
    res, summary = backtest(f, s, {m: COSTS}, window, config=CONFIG, types={m: "pump"})
    bid = roi_store.save_backtest(
        db,
        source="database",
        window=window,
        params={},
        costs={"pump": {}},
        result=res.to_dict(),
        summary=summary.to_dict(),
    )
    assert roi_store.latest_threshold(db) == res.threshold
    assert roi_store.latest_thresholds_by_type(db) == {"pump": res.threshold}
    same = reprice(roi_store.backtest_summary(db, backtest_id=bid), {})
    assert same == res.to_dict()
    cheap = reprice(
        roi_store.backtest_summary(db), {"pump": {"repair_cost": 0.0, "downtime_cost_per_h": 0.0}}
    )
    assert cheap is not None and cheap["threshold"] is None  # nothing left to save
    assert not math.isnan(cheap["policies"]["predictive"]["cost"])


def test_api_roi_backtest_ledger_and_what_if(db_url: str) -> None:
    import pandas as pd

    from models.roi import backtest
    from tests.fixtures.app import build_env

    env_iter = build_env(db_url, machines=1)
    env = next(env_iter)
    try:
        c, h = env.client, env.h("viewer")
        assert c.get("/v1/roi/backtest", headers=h).status_code == 404
        assert c.post("/v1/roi/what-if", headers=h, json={"costs": {}}).status_code == 404
        m = "s1-pump-000"
        f = pd.DataFrame({"machine_id": [m], "ts": [T0 + timedelta(hours=100)], "mode": ["x"]})
        s = pd.DataFrame(
            {
                "machine_id": m,
                "ts": [T0 + timedelta(hours=h) for h in range(0, 100)],
                "failure_prob": [0.9 if 80 <= h <= 82 else 0.1 for h in range(0, 100)],
            }
        )
        window = (T0, T0 + timedelta(hours=200))
        res, summary = backtest(f, s, {m: COSTS}, window, config=CONFIG, types={m: "pump"})
        with env.conn() as conn:
            roi_store.save_backtest(
                conn,
                source="database",
                window=window,
                params={},
                costs={},
                result=res.to_dict(),
                summary=summary.to_dict(),
            )
        got = c.get("/v1/roi/backtest", headers=h)
        assert got.status_code == 200 and got.json()["threshold"] == res.threshold
        body = {"costs": {"pump": {"repair_cost": 0.0, "downtime_cost_per_h": 0.0}}}
        wi = c.post("/v1/roi/what-if", headers=h, json=body)
        assert wi.status_code == 200 and wi.json()["threshold"] is None
        bad = c.post("/v1/roi/what-if", headers=h, json={"costs": {"*": {"nope": 1.0}}})
        assert bad.status_code == 422 and "unknown cost field" in bad.text
        led = c.get("/v1/roi/ledger", headers=h)
        assert led.status_code == 200 and led.json()["totals"]["net_savings"] == 0
    finally:
        env_iter.close()

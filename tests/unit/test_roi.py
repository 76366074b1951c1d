"""ROI backtest: hand-built histories with answers worked out by hand, and properties."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forewarn.assets import Costs
from models.policy import planned_cost, unplanned_cost
from models.roi import (
    BacktestConfig,
    LifeSummary,
    backtest,
    build_lives,
    evaluate,
    summarize,
    what_if,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
C = Costs(
    downtime_cost_per_h=1000.0,
    repair_cost=5000.0,
    planned_maintenance_cost=800.0,
    inspection_cost=150.0,
    repair_hours=12.0,
    planned_hours=2.0,
)
U = 5000 + 12 * 1000  # a failure
P = 150 + 800 + 2 * 1000  # a caught failure: inspection + planned job
PM = 800 + 2 * 1000  # a scheduled preventive job
CFG = BacktestConfig(horizon_h=48, min_lead_h=4, k=3, cooldown_h=24)


def at(h: float) -> datetime:
    return T0 + timedelta(hours=h)


def failures(rows: list[tuple[str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {"machine_id": [m for m, _ in rows], "ts": [at(h) for _, h in rows], "mode": "wear"}
    )


def scores(machine: str, hours: range | list[int], high: set[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "machine_id": machine,
            "ts": [at(h) for h in hours],
            "failure_prob": [0.9 if h in high else 0.1 for h in hours],
        }
    )


def one_machine(high: set[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Failures at 100 h and 300 h (12 h repairs), window 0-1000 h: lives 100, 188, 688 (censored)."""
    live_hours = [*range(0, 100), *range(112, 300), *range(312, 1000)]
    return failures([("m1", 100), ("m1", 300)]), scores("m1", live_hours, high)


def test_cost_definitions_agree_with_the_alert_policy() -> None:
    assert unplanned_cost(C) == U and planned_cost(C) == P


def test_lives_split_at_failures_and_resume_after_the_repair() -> None:
    f, _ = one_machine(set())
    lives = build_lives(f, {"m1": C}, (at(0), at(1000)))
    assert (lives["end"] - lives["start"]).tolist() == [100, 188, 688]
    assert lives["failed"].tolist() == [True, True, False]


def test_hand_worked_history() -> None:
    # alerts: 80-82 -> raised at 82 (lead 18, caught); 280-282 -> 282 (caught);
    # 500-502 -> 502 in the censored life, no failure within 48 h: a false alarm.
    high = {80, 81, 82, 280, 281, 282, 500, 501, 502}
    f, s = one_machine(high)
    res, summary = backtest(f, s, {"m1": C}, (at(0), at(1000)), config=CFG)
    exposure = 100 + 188 + 688
    rtf = res.policies["run-to-failure"]
    assert (rtf.failures, rtf.caught, rtf.missed) == (2, 0, 2)
    assert rtf.cost == pytest.approx(2 * U)  # the lives fill the window: scaled = observed
    assert rtf.downtime_h == pytest.approx(24)
    pred = res.policies["predictive"]
    assert (pred.failures, pred.caught, pred.missed, pred.false_alarms) == (2, 2, 0, 1)
    # renewed at 82 h and 170 h of operation; the censored life runs its 688 h
    rate = (2 * P + 150) / (82 + 170 + 688)
    assert pred.cost == pytest.approx(rate * exposure)
    assert pred.downtime_h == pytest.approx(4 * exposure / (82 + 170 + 688))
    assert pred.lead_time_h["p50"] == pytest.approx(18)
    assert pred.cost == pytest.approx(pred.maintenance_cost + pred.downtime_cost)
    # fixed interval: T = 100 renews all three lives at 100 h (3 jobs over 300 h) and beats
    # T = 188 (one failure, two jobs over 476 h) and never (run-to-failure)
    fi = res.policies["fixed-interval"]
    assert res.fixed_interval_h == {"all": pytest.approx(100)}
    assert fi.cost == pytest.approx(3 * PM / 300 * exposure)
    assert (fi.failures, fi.caught, fi.missed, fi.planned_jobs) == (2, 2, 0, 3)
    assert res.savings_vs_run_to_failure == pytest.approx(rtf.cost - pred.cost)
    assert res.threshold == 0.9  # ties go to the highest threshold (fewest alerts)
    assert summary.n_lives == 3


def test_late_alert_is_a_miss_and_k_consecutive_scores_are_needed() -> None:
    # 97-99 -> raised at 99, 1 h before the failure: too late. 290 and 292 high, 291 low: no alert.
    f, s = one_machine({97, 98, 99, 290, 292})
    res, _ = backtest(f, s, {"m1": C}, (at(0), at(1000)), config=CFG)
    row = next(r for r in res.curve if r["threshold"] == 0.5)
    assert (row["caught"], row["missed"], row["late_alerts"], row["false_alarms"]) == (0, 2, 1, 0)
    pred = res.policies["predictive"]
    # never alerting is then exactly run-to-failure, and it is chosen
    assert res.threshold is None
    assert pred.cost == pytest.approx(res.policies["run-to-failure"].cost)


def test_cooldown_after_a_false_alarm_and_unknown_at_the_window_end() -> None:
    # 500-502 false alarm, 510-512 within the 24 h cooldown (ignored), 530-532 a second false
    # alarm; 990-992 is less than 48 h before the censoring end: unknown, not counted.
    high = {500, 501, 502, 510, 511, 512, 530, 531, 532, 990, 991, 992}
    f, s = one_machine(high)
    res, _ = backtest(f, s, {"m1": C}, (at(0), at(1000)), config=CFG)
    row = next(r for r in res.curve if r["threshold"] == 0.5)
    assert row["false_alarms"] == 2 and row["caught"] == 0


def test_capacity_limit_drops_the_excess_alerts_in_a_shift() -> None:
    live = [*range(0, 100), *range(112, 200)]
    f = failures([("a", 100), ("b", 100)])
    s = pd.concat([scores("a", live, {80, 81, 82}), scores("b", live, {80, 81, 82})])
    costs = {"a": C, "b": C}
    window = (at(0), at(200))
    free, _ = backtest(f, s, costs, window, config=CFG)
    capped, summary = backtest(
        f, s, costs, window, config=BacktestConfig(horizon_h=48, min_lead_h=4, capacity_per_shift=1)
    )
    assert free.policies["predictive"].caught == 2
    assert capped.policies["predictive"].caught == 1
    assert capped.policies["predictive"].missed == 1
    row = next(r for r in capped.curve if r["threshold"] == 0.5)
    assert (row["caught"], row["not_acted_on"]) == (1, 1)


def test_types_are_reported_separately_and_sum_to_the_total() -> None:
    f = failures([("a", 100), ("b", 150)])
    s = pd.concat(
        [scores("a", range(0, 100), {80, 81, 82}), scores("b", range(0, 150), {140, 141, 142})]
    )
    res, _ = backtest(
        f, s, {"a": C, "b": C}, (at(0), at(300)), config=CFG, types={"a": "pump", "b": "mill"}
    )
    assert set(res.by_type) == {"pump", "mill"}
    for p in ("run-to-failure", "fixed-interval", "predictive"):
        total = res.policies[p]
        assert total.cost == pytest.approx(sum(res.by_type[t][p].cost for t in res.by_type))
        assert total.failures == 2
    assert res.by_type["mill"]["predictive"].caught == 1  # lead 8 h
    assert res.by_type["pump"]["predictive"].caught == 1


def test_what_if_matches_a_fresh_backtest_and_survives_json() -> None:
    high = {80, 81, 82, 280, 281, 282, 500, 501, 502}
    f, s = one_machine(high)
    _, summary = backtest(f, s, {"m1": C}, (at(0), at(1000)), config=CFG)
    cheap = {"repair_cost": 100.0, "downtime_cost_per_h": 10.0}
    fresh, _ = backtest(
        f, s, {"m1": Costs(10.0, 100.0, 800.0, 150.0, 12.0, 2.0)}, (at(0), at(1000)), config=CFG
    )
    restored = LifeSummary.from_dict(json.loads(json.dumps(summary.to_dict())))
    for s2 in (summary, restored):
        again = what_if(s2, {"*": cheap}).to_dict()
        assert again == fresh.to_dict()
    # failures this cheap make the planned work not worth it
    assert fresh.threshold is None
    with pytest.raises(ValueError, match="unknown cost field"):
        what_if(summary, {"*": {"repair_usd": 1.0}})
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="must be between"):
            what_if(summary, {"*": {"repair_cost": bad}})


def test_history_before_the_window_dates_the_first_life() -> None:
    f = failures([("m1", -50), ("m1", 100)])  # failed 50 h before the window, repaired 12 h
    lives = build_lives(f, {"m1": C}, (at(0), at(200)), history_start=at(-500))
    assert lives["start"].iloc[0] == pytest.approx(lives["end"].iloc[0] - 138)
    assert lives["failed"].tolist() == [True, False]


def test_json_shape() -> None:
    f, s = one_machine({80, 81, 82})
    res, _ = backtest(f, s, {"m1": C}, (at(0), at(1000)), config=CFG)
    d = json.loads(json.dumps(res.to_dict()))
    assert set(d["policies"]) == {"run-to-failure", "fixed-interval", "predictive"}
    for p in d["policies"].values():
        assert {"cost", "downtime_h", "failures", "caught", "missed", "false_alarms"} <= set(p)
    assert {"savings_vs_run_to_failure", "savings_vs_fixed_interval", "threshold"} <= set(d)


# ---- properties ---------------------------------------------------------------------------

costs_st = st.builds(
    Costs,
    downtime_cost_per_h=st.floats(0, 5000),
    repair_cost=st.floats(0, 20000),
    planned_maintenance_cost=st.floats(0, 5000),
    inspection_cost=st.floats(0, 1000),
    repair_hours=st.floats(0, 15),
    planned_hours=st.floats(0, 8),
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[pd.DataFrame, dict[str, Costs], int]:
    """1-3 machines over 400 h, failures at whole hours at least 20 h apart."""
    n = draw(st.integers(1, 3))
    rows: list[tuple[str, float]] = []
    for i in range(n):
        gaps = draw(st.lists(st.integers(20, 150), max_size=4))
        t = 0
        for g in gaps:
            t += g
            if t < 400:
                rows.append((f"m{i}", float(t)))
    costs = {f"m{i}": C for i in range(n)}
    return failures(rows), costs, n


def _hourly(f: pd.DataFrame, costs: dict[str, Costs], prob: object) -> pd.DataFrame:
    lives = build_lives(f, costs, (at(0), at(400)))
    parts = []
    for life in lives.itertuples():
        hs = np.arange(np.ceil(life.start - hours0()), np.floor(life.end - hours0()) + 1)
        parts.append(
            pd.DataFrame(
                {
                    "machine_id": life.machine,
                    "ts": [at(float(h)) for h in hs],
                    "failure_prob": [prob(life, float(h)) for h in hs],  # type: ignore[operator]
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def hours0() -> float:
    return T0.timestamp() / 3600.0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.integers(0, 2**32 - 1), costs_st)
def test_counts_add_up_and_the_sweep_never_loses_to_run_to_failure(
    h: tuple[pd.DataFrame, dict[str, Costs], int], seed: int, c: Costs
) -> None:
    f, _, n = h
    costs = {m: c for m in (f"m{i}" for i in range(n))}
    rng = np.random.default_rng(seed)
    s = _hourly(f, costs, lambda life, t: float(rng.random()))  # useless scores
    res, summary = backtest(f, s, costs, (at(0), at(400)), config=CFG)
    for p in res.policies.values():
        assert p.caught + p.missed == p.failures == len(f)
    for row in res.curve:
        assert row["caught"] + row["missed"] == len(f)
    rtf = res.policies["run-to-failure"].cost
    assert res.policies["predictive"].cost <= rtf + 1e-6 * max(1.0, rtf)
    assert res.policies["fixed-interval"].cost <= rtf + 1e-6 * max(1.0, rtf)
    never = res.curve[-1]
    assert never["threshold"] is None and never["cost"] == pytest.approx(rtf, abs=0.01)
    assert evaluate(summary).to_dict() == res.to_dict()  # deterministic


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), costs_st)
def test_perfect_scores_beat_both_baselines(
    h: tuple[pd.DataFrame, dict[str, Costs], int], c: Costs
) -> None:
    """An oracle that alerts exactly at the failure (lead 0, allowed here) renews each failing life
    at its full length for a planned job. When a planned job costs no more than a failure or a
    scheduled job (no separate inspection), no fixed interval can do better on any single life."""
    c = Costs(
        c.downtime_cost_per_h,
        max(c.repair_cost, c.planned_maintenance_cost),
        c.planned_maintenance_cost,
        0.0,
        max(c.repair_hours, c.planned_hours),
        c.planned_hours,
    )
    f, _, n = h
    costs = {f"m{i}": c for i in range(n)}
    s = _hourly(
        f, costs, lambda life, t: 1.0 if life.failed and life.end - hours0() - t <= 2 else 0.0
    )
    cfg = BacktestConfig(horizon_h=48, min_lead_h=0, k=3, cooldown_h=24)
    res, _ = backtest(f, s, costs, (at(0), at(400)), config=cfg)
    pred = res.policies["predictive"]
    tol = 1e-6 * max(1.0, res.policies["run-to-failure"].cost)
    row = next(r for r in res.curve if r["threshold"] == 0.5)
    assert row["caught"] == len(f) and row["false_alarms"] == 0
    assert pred.cost <= res.policies["run-to-failure"].cost + tol
    assert pred.cost <= res.policies["fixed-interval"].cost + tol


def test_no_scores_no_alerts() -> None:
    f, _ = one_machine(set())
    empty = pd.DataFrame(columns=["machine_id", "ts", "failure_prob"])
    s = summarize(f, empty, {"m1": C}, (at(0), at(1000)), config=CFG)
    res = evaluate(s)
    assert res.policies["predictive"].caught == 0
    assert res.policies["predictive"].cost == pytest.approx(res.policies["run-to-failure"].cost)

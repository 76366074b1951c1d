"""Alert policy: hysteresis and de-duplication as properties, severity, data quality, thresholds."""

from __future__ import annotations

import doctest
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import models.policy as policy
from models.policy import (
    HysteresisState,
    Labelled,
    Thresholds,
    cost_threshold,
    data_quality,
    expected_savings,
    plan_raise,
    severity,
    step,
)
from tests.factories import COSTS

probs = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
thresholds = st.builds(
    lambda lo, gap, k: Thresholds(high=min(1.0, lo + gap), low=lo, k=k),
    st.floats(0.0, 0.8),
    st.floats(0.05, 0.5),
    st.integers(1, 5),
)


def run(scores: list[float], th: Thresholds) -> list[str]:
    state = HysteresisState()
    out = []
    for p in scores:
        state, d = step(state, p, th)
        out.append(d)
    return out


@given(st.lists(probs, max_size=60), thresholds)
def test_raise_needs_k_consecutive_highs_and_alternates_with_clear(
    scores: list[float], th: Thresholds
) -> None:
    decisions = run(scores, th)
    active = False
    for i, d in enumerate(decisions):
        if d == "raise":
            assert not active
            assert i + 1 >= th.k
            assert all(p >= th.high for p in scores[i + 1 - th.k : i + 1])
            active = True
        elif d == "clear":
            assert active and scores[i] < th.low
            active = False
        elif d == "hold":
            assert active and scores[i] >= th.high
    # raises and clears alternate, starting with a raise
    events = [d for d in decisions if d in ("raise", "clear")]
    assert events == ["raise", "clear"] * (len(events) // 2) + ["raise"] * (len(events) % 2)


@given(st.lists(probs, max_size=60), thresholds)
def test_scores_between_thresholds_never_change_the_alert(
    scores: list[float], th: Thresholds
) -> None:
    state = HysteresisState()
    for p in scores:
        new, d = step(state, p, th)
        if th.low <= p < th.high:
            assert d == "none" and new.active == state.active
        state = new


@given(st.integers(1, 6), st.integers(0, 30))
def test_k_consecutive_highs_raise_exactly_once(k: int, extra: int) -> None:
    th = Thresholds(high=0.6, low=0.3, k=k)
    assert run([0.9] * (k + extra), th).count("raise") == 1
    # one score in the middle band resets the run
    assert "raise" not in run([0.9] * (k - 1) + [0.5] + [0.9] * (k - 1), th)


keys = st.tuples(st.sampled_from(["m1", "m2", "m3"]), st.sampled_from(["bearing", "heat"]))
ops = st.lists(st.tuples(st.sampled_from(["raise", "close"]), keys), max_size=80)


@given(ops)
def test_dedup_keeps_at_most_one_open_alert_per_machine_and_mode(seq: list) -> None:
    alerts: dict[int, tuple[str, str, str]] = {}  # id -> (machine, mode, status)
    for op, (machine, mode) in seq:
        open_ = {(m, md): i for i, (m, md, s) in alerts.items() if s in policy.OPEN_STATUSES}
        if op == "raise":
            plan = plan_raise(open_, machine, mode)
            if plan.action == "insert":
                alerts[len(alerts) + 1] = (machine, mode, "open")
            else:
                assert plan.alert_id == open_[(machine, mode)]
        elif (machine, mode) in open_:
            alerts[open_[(machine, mode)]] = (machine, mode, "resolved")
        counts: dict[tuple[str, str], int] = {}
        for m, md, s in alerts.values():
            if s in policy.OPEN_STATUSES:
                counts[(m, md)] = counts.get((m, md), 0) + 1
        assert all(n == 1 for n in counts.values())


def test_severity_grows_with_probability_and_urgency() -> None:
    assert severity(0.95, 12) == "critical"
    assert severity(0.5, 4) == "critical"
    assert severity(0.85, None) == "high"
    assert severity(0.65, 500) == "medium"
    assert severity(0.4, None) == "low"
    assert policy.recommended_action("TWF", "high").startswith("Plan repair within a day")
    assert "bearing" in policy.recommended_action("bearing", "low")


def test_data_quality_gate() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    fresh = now - timedelta(seconds=10)
    kw = {"now": now, "stale_after_s": 900.0}
    assert data_quality(prob=0.7, ttf_h=5, ts=fresh, **kw) == "ok"
    assert data_quality(prob=None, ttf_h=5, ts=fresh, **kw) == "missing"
    assert data_quality(prob=float("nan"), ttf_h=5, ts=fresh, **kw) == "missing"
    assert data_quality(prob=1.3, ttf_h=5, ts=fresh, **kw) == "out_of_range"
    assert data_quality(prob=0.7, ttf_h=-1, ts=fresh, **kw) == "out_of_range"
    assert data_quality(prob=0.7, ttf_h=5, ts=now - timedelta(hours=1), **kw) == "stale"
    assert data_quality(prob=0.7, ttf_h=5, ts=fresh, scorer_flag="low", **kw) == "flagged"


def _naive(
    t: list[float], p: list[float], pol: policy.AlertPolicy, state: HysteresisState
) -> tuple[list[str], HysteresisState]:
    """The rule written one score at a time, as the spec reads (the oracle for scan)."""
    n, active, quiet = state.consecutive_high, state.active, state.quiet_until_h
    out = []
    for ti, pi in zip(t, p, strict=True):
        if pi >= pol.high:
            n += 1
            if active:
                out.append("hold")
            elif n >= pol.k and ti >= quiet:
                active, quiet = True, ti + pol.cooldown_h
                out.append("raise")
            else:
                out.append("none")
        elif pi < pol.low:
            n = 0
            out.append("clear" if active else "none")
            active = False
        else:
            n = 0
            out.append("none")
    return out, HysteresisState(n, active, quiet)


@given(
    st.lists(st.tuples(st.floats(0.0, 3.0), probs), max_size=80),
    thresholds,
    st.floats(0.0, 10.0),
    st.integers(0, 80),
)
def test_scan_is_the_rule_one_score_at_a_time_and_batches_compose(
    steps: list[tuple[float, float]], th: Thresholds, cooldown: float, cut: int
) -> None:
    pol = policy.AlertPolicy(high=th.high, low=th.low, k=th.k, cooldown_h=cooldown)
    t = list(np.cumsum([dt for dt, _ in steps]))
    p = [x for _, x in steps]
    want, want_state = _naive(t, p, pol, HysteresisState())
    d, s = policy.scan(t, p, pol)
    assert [policy.DECISIONS[x] for x in d] == want and s == want_state
    # the engine scans each pass's new predictions from the stored state: same decisions
    d1, s1 = policy.scan(t[:cut], p[:cut], pol)
    d2, s2 = policy.scan(t[cut:], p[cut:], pol, s1)
    assert [policy.DECISIONS[x] for x in np.r_[d1, d2]] == want and s2 == want_state


def _hist(rows: list[tuple[float, bool]]) -> list[Labelled]:
    return [Labelled(f"m{i}", 0.0, p, f) for i, (p, f) in enumerate(rows)]


def test_cost_threshold_maximises_savings_on_history() -> None:
    # gain of a true alert: 12*1000+5000 - (150+800+2*1000) = 14050; a false alert costs 150
    hist = _hist([(0.9, True), (0.7, False), (0.6, True), (0.5, False), (0.3, False), (0.1, False)])
    base = policy.AlertPolicy(high=0.6, low=0.3, k=1)
    choice = cost_threshold(hist, COSTS, base)
    assert choice.threshold == 0.6
    assert choice.expected_savings == 2 * 14050 - 150
    assert all(
        expected_savings(hist, replace(base, high=t, low=t / 2), COSTS) <= choice.expected_savings
        for t in (0.1, 0.3, 0.5, 0.7, 0.9)
    )


def test_expected_savings_counts_alerts_not_predictions() -> None:
    # one machine, six high scores in a row before a failure: ONE alert, not six
    pol = policy.AlertPolicy(high=0.5, low=0.2, k=3, cooldown_h=24)
    hist = [Labelled("m", float(h), 0.9, True) for h in range(6)]
    assert policy.alert_outcomes(hist, pol) == (1, 0)
    assert expected_savings(hist, pol, COSTS) == 14050


def test_cost_threshold_never_alerts_when_false_alarms_dominate() -> None:
    hist = _hist([(0.9, False)] * 5)
    assert cost_threshold(hist, COSTS, policy.AlertPolicy(k=1)).threshold == policy.NEVER


def test_doctests() -> None:
    assert doctest.testmod(policy).failed == 0

"""Out-of-sample ROI: rolling-origin tuning, bootstrap intervals over machines, the policy to propose.

Pure (no storage, no I/O). The backtest's in-sample figures pick the alert threshold and the
fixed-interval period on the same lives they then score, which flatters both. Here the scored
window is cut into ``segments`` consecutive pieces; for each piece after the first, both the
predictive threshold (per machine type) and the fixed-interval period (per machine type) are tuned
on everything before it (an expanding window: the same information for both) and scored, frozen,
on that piece. The out-of-sample figures are the sums over the scored pieces.

Each saving comes with a bootstrap interval over machines: machines are drawn with replacement
(``draws`` times), each draw re-prices every piece with the drawn machines' lives, and the 2.5 and
97.5 percentiles of the savings are reported.

A policy is proposed only when its out-of-sample savings beat both baselines. The proposed
per-type thresholds are those tuned on the whole window (all the information there is); the
out-of-sample figures are the honest estimate of what such tuning earns on lives it has not seen.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forewarn.assets import Costs
from forewarn.money import CostColumns
from models.lives import CAUGHT, FAILED, BacktestConfig, LifeSummary, summarize
from models.policy import AlertPolicy, PolicySet
from models.roi import BacktestResult, evaluate, fixed_interval_lives

SEGMENTS = 5  # the scored window is cut into this many pieces; the first is only ever tuned on
DRAWS = 1000  # bootstrap draws over machines
NEVER_HIGH = 1.01  # a threshold no probability reaches: "never alert" as a policy
BASELINES = ("run-to-failure", "fixed-interval")


@dataclass(frozen=True, slots=True)
class Tuned:
    """What tuning on one window chose: per type, the threshold (None: never) and the interval."""

    thresholds: Mapping[str, float | None]
    intervals: Mapping[str, float | None]


def tuned(result: BacktestResult) -> Tuned:
    """The parameters an in-sample evaluation chose."""
    return Tuned(dict(result.thresholds_by_type), dict(result.fixed_interval_h))


@dataclass
class Priced:
    """One window priced at fixed parameters, per life: cost and operating hours per policy."""

    machine: np.ndarray
    type: np.ndarray
    exposure: np.ndarray  # operating hours each life was watched inside the window
    cost: dict[str, np.ndarray]
    op: dict[str, np.ndarray]
    failures: int
    caught: int
    false_alarms: int


def price(s: LifeSummary, params: Tuned) -> Priced:
    """Cost and operating hours of every life of ``s`` under the three policies at ``params``."""
    cc = CostColumns.from_matrix(s.costs)
    unplanned = cc.unplanned_failure()
    f = s.failed
    # fixed interval: a life reaching T is renewed at T by a preventive job
    T = np.array([_or_inf(params.intervals.get(t)) for t in s.type], float)
    renew, fi_fail, fi_op = fixed_interval_lives(s.start, s.end, f, s.window[0], T)
    # predictive: each life's column of the threshold grid
    j = np.array([_column(s, params.thresholds.get(t)) for t in s.type], np.int64)
    rows = np.arange(s.n_lives)
    out = s.outcome[rows, j]
    fa = s.false_alarms[rows, j]
    pred_cost = (
        fa * cc.inspection() + (out == CAUGHT) * cc.planned_repair() + (out == FAILED) * unplanned
    )
    return Priced(
        machine=s.machine,
        type=s.type,
        exposure=s.end - s.seen_from,
        cost={
            "run-to-failure": f * unplanned,
            "fixed-interval": renew * cc.preventive_job() + fi_fail * unplanned,
            "predictive": pred_cost,
        },
        op={
            "run-to-failure": s.end - s.seen_from,
            "fixed-interval": fi_op,
            "predictive": s.op_window[rows, j],
        },
        failures=int(f.sum()),
        caught=int((out == CAUGHT).sum()),
        false_alarms=int(fa.sum()),
    )


def _or_inf(x: float | None) -> float:
    return math.inf if x is None else float(x)


def _column(s: LifeSummary, threshold: float | None) -> int:
    """The grid column of a threshold (the last one, "never", for None or an unknown value)."""
    if threshold is None:
        return len(s.thresholds) - 1
    hit = np.flatnonzero(np.isclose(s.thresholds, threshold))
    return int(hit[0]) if len(hit) else len(s.thresholds) - 1


def money_by_policy(
    pieces: list[Priced], machines: list[str], weights: np.ndarray
) -> dict[str, np.ndarray]:
    """Cost of each policy, renewal-reward scaled per piece and type, under machine weights.

    ``weights`` is (draws, machines): how often each machine is in each draw (all ones = as
    observed). Returns policy -> (draws,) money.
    """
    index = {m: i for i, m in enumerate(machines)}
    total = {
        p: np.zeros(weights.shape[0]) for p in ("run-to-failure", "fixed-interval", "predictive")
    }
    for pc in pieces:
        mi = np.array([index[str(m)] for m in pc.machine], np.int64)
        for t in sorted(set(pc.type.tolist())):
            rows = pc.type == t
            w = weights[:, mi[rows]]  # (draws, lives of the type)
            exposure = w @ pc.exposure[rows]
            for p in total:
                cost = w @ pc.cost[p][rows]
                op = w @ pc.op[p][rows]
                total[p] += np.divide(cost, op, out=np.zeros_like(cost), where=op > 0) * exposure
    return total


def _figures(pieces: list[Priced], machines: list[str], draws: int, seed: int) -> dict[str, Any]:
    """Costs and savings as observed, with bootstrap intervals over machines."""
    point = money_by_policy(pieces, machines, np.ones((1, len(machines))))
    rng = np.random.default_rng(seed)
    w = rng.multinomial(len(machines), np.full(len(machines), 1 / len(machines)), size=draws)
    boot = money_by_policy(pieces, machines, w.astype(float))
    out: dict[str, Any] = {
        "cost": {p: round(float(v[0]), 2) for p, v in point.items()},
        "failures": sum(p.failures for p in pieces),
        "caught": sum(p.caught for p in pieces),
        "false_alarms": sum(p.false_alarms for p in pieces),
        "operating_h": round(float(sum(p.exposure.sum() for p in pieces)), 1),
        "bootstrap_draws": draws,
    }
    for base, key in zip(BASELINES, ("run_to_failure", "fixed_interval"), strict=True):
        saving = float(point[base][0] - point["predictive"][0])
        dist = boot[base] - boot["predictive"]
        lo, hi = np.percentile(dist, [2.5, 97.5])
        out[f"savings_vs_{key}"] = round(saving, 2)
        out[f"savings_pct_vs_{key}"] = (
            round(100 * saving / float(point[base][0]), 1) if point[base][0] > 0 else None
        )
        out[f"ci_low_vs_{key}"] = round(float(lo), 2)
        out[f"ci_high_vs_{key}"] = round(float(hi), 2)
    return out


def rolling_origin(
    failures: pd.DataFrame,
    scores: pd.DataFrame,
    costs: Mapping[str, Costs],
    window: tuple[Any, Any],
    *,
    config: BacktestConfig,
    types: Mapping[str, str] | None = None,
    renewals: pd.DataFrame | None = None,
    history_start: Any = None,
    segments: int = SEGMENTS,
    draws: int = DRAWS,
    seed: int = 0,
) -> tuple[BacktestResult, LifeSummary, dict[str, Any]]:
    """In-sample result and summary over ``window`` and the honest report (JSON-ready).

    The report holds ``in_sample`` and ``out_of_sample`` figures (costs, savings, percentages,
    bootstrap intervals), the ``folds`` with what each tuned and scored, and ``tuned`` (the
    parameters tuning on the whole window chose).
    """
    if segments < 2:
        raise ValueError("need at least 2 segments: one to tune on, one to score")
    kw: dict[str, Any] = {
        "config": config,
        "types": types,
        "renewals": renewals,
        "history_start": history_start,
    }
    t0 = pd.Timestamp(window[0])
    t1 = pd.Timestamp(window[1])
    edges = [t0 + (t1 - t0) * i / segments for i in range(segments + 1)]
    machines = sorted(costs)
    folds: list[dict[str, Any]] = []
    pieces: list[Priced] = []
    for i in range(1, segments):
        tune_w, test_w = (edges[0], edges[i]), (edges[i], edges[i + 1])
        params = tuned(evaluate(summarize(failures, scores, costs, tune_w, **kw)))
        piece = price(summarize(failures, scores, costs, test_w, **kw), params)
        pieces.append(piece)
        one = money_by_policy([piece], machines, np.ones((1, len(machines))))
        folds.append(
            {
                "tuned_on": [tune_w[0].isoformat(), tune_w[1].isoformat()],
                "scored_on": [test_w[0].isoformat(), test_w[1].isoformat()],
                "thresholds_by_type": dict(params.thresholds),
                "fixed_interval_h": dict(params.intervals),
                "cost": {p: round(float(v[0]), 2) for p, v in one.items()},
                "failures": piece.failures,
                "caught": piece.caught,
                "false_alarms": piece.false_alarms,
            }
        )
    full_summary = summarize(failures, scores, costs, window, **kw)
    full = evaluate(full_summary)
    final = tuned(full)
    oos = _figures(pieces, machines, draws, seed)
    oos["window"] = [edges[1].isoformat(), edges[-1].isoformat()]
    ins = _figures([price(full_summary, final)], machines, draws, seed)
    ins["window"] = [edges[0].isoformat(), edges[-1].isoformat()]
    report = {
        "in_sample": ins,
        "out_of_sample": oos,
        "folds": folds,
        "tuned": {
            "thresholds_by_type": dict(final.thresholds),
            "fixed_interval_h": dict(final.intervals),
        },
        "method": (
            f"rolling origin: the window cut into {segments} pieces; each piece after the first"
            " scored with the threshold and fixed interval tuned on all pieces before it;"
            f" {draws} bootstrap draws over machines, 95 % intervals"
        ),
    }
    return full, full_summary, report


def beats_both(figures: Mapping[str, Any]) -> bool:
    """True when the predictive policy saved money against both baselines."""
    return bool(
        figures["savings_vs_run_to_failure"] > 0 and figures["savings_vs_fixed_interval"] > 0
    )


def proposed_policy(
    config: BacktestConfig, report: Mapping[str, Any], default: AlertPolicy
) -> PolicySet | None:
    """The policy to propose (per type, the thresholds tuned on the whole window; ``default`` for
    types the history did not have), or None when its out-of-sample savings do not beat both
    baselines."""
    if not beats_both(report["out_of_sample"]):
        return None
    types: dict[str, AlertPolicy] = {}
    for t, th in report["tuned"]["thresholds_by_type"].items():
        types[t] = config.policy_at(NEVER_HIGH if th is None else float(th))
    return PolicySet(default=default, types=types)

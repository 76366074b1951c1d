"""Maintenance-policy backtest and ROI: pure functions over DataFrames, no storage, no I/O.

Renewal-reward view. A machine's history splits into *lives*: each ends in a failure or is
censored (at the window end, or by maintenance done in the history). Every policy is applied to
every observed life independently, which is fair to the baselines:

- ``run-to-failure``: a failed life costs a repair (``repair_cost`` + ``repair_hours`` of downtime).
- ``fixed-interval``: a life longer than ``T`` operating hours is renewed at ``T`` with a planned
  job; shorter failing lives still fail. ``T`` is optimised per machine type on the same history
  over a grid that includes "never" (so the baseline is at least as good as run-to-failure).
- ``predictive``: alerts from the failure scores with the alert engine's hysteresis (``k``
  consecutive scores at or above the threshold). An alert whose failure follows within
  ``horizon_h`` and at least ``min_lead_h`` later *catches* it (inspection + planned repair, life
  renewed at the alert); a later one is *too late* (the failure happens); an alert with no failure
  within the horizon is a *false alarm* (an inspection, then ``cooldown_h`` without alerts).

Policies are compared by cost per operating hour; reported money and downtime are that rate times
the window's observed operating hours (per machine type, then summed). Counts (failures, caught,
missed, false alarms) are plain counts over the window's lives, so they can be checked against the
ground truth. ``caught + missed == failures`` for every policy.

Everything that depends on the scores is cost-free and kept in a :class:`LifeSummary` (one row per
life and threshold), so :func:`evaluate` with other costs (a what-if) is a few array operations.
Approximations: the counterfactual after a renewal is "a new life like the observed ones"; alerts
before the window start are not seen (a life that began earlier is only watched from the window
start); an alert not acted on because of the capacity limit stays open for ``cooldown_h``; the
hysteresis re-arms when a score falls below the threshold itself (the alert engine's separate
``low`` only delays re-raising, which the cooldown already does after a false alarm).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forewarn import money
from forewarn.assets import Costs
from forewarn.money import CostColumns
from models.lives import (
    CAUGHT,
    COST_FIELDS,
    DEFAULT_THRESHOLDS,
    FAILED,
    NEVER,
    BacktestConfig,
    LifeSummary,
    build_lives,
    hours,
    summarize,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "NEVER",
    "POLICIES",
    "BacktestConfig",
    "BacktestResult",
    "LifeSummary",
    "PolicyResult",
    "backtest",
    "build_lives",
    "evaluate",
    "hours",
    "preventive_cost",
    "summarize",
    "what_if",
    "reprice",
]

POLICIES: tuple[str, ...] = ("run-to-failure", "fixed-interval", "predictive")
MAX_COST = 1e12  # per cost field in a what-if; larger (or negative, NaN) is rejected


def preventive_cost(c: Costs) -> float:
    """A scheduled preventive job (:func:`forewarn.money.preventive_job`)."""
    return money.preventive_job(c)


@dataclass
class PolicyResult:
    """One policy on one group of machines (a type, or the whole plant)."""

    policy: str
    cost: float = 0.0
    maintenance_cost: float = 0.0
    downtime_cost: float = 0.0
    downtime_h: float = 0.0
    operating_h: float = 0.0
    cost_per_operating_h: float = 0.0
    failures: int = 0
    caught: int = 0
    missed: int = 0
    false_alarms: int = 0
    late_alerts: int = 0
    planned_jobs: int = 0
    lead_time_h: dict[str, float | None] = field(default_factory=dict)
    parameter: float | None = None  # T (hours) or the threshold; None = never

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("cost", "maintenance_cost", "downtime_cost", "downtime_h", "operating_h"):
            d[k] = round(d[k], 2)
        d["cost_per_operating_h"] = round(d["cost_per_operating_h"], 4)
        return d


@dataclass
class BacktestResult:
    policies: dict[str, PolicyResult]
    by_type: dict[str, dict[str, PolicyResult]]
    threshold: float | None  # None: never alerting is best on this history
    fixed_interval_h: dict[str, float | None]
    thresholds_by_type: dict[str, float | None]  # each type's own best (without capacity coupling)
    curve: list[dict[str, Any]]
    lives: int

    @property
    def savings_vs_run_to_failure(self) -> float:
        return self.policies["run-to-failure"].cost - self.policies["predictive"].cost

    @property
    def savings_vs_fixed_interval(self) -> float:
        return self.policies["fixed-interval"].cost - self.policies["predictive"].cost

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``forewarn backtest --json``."""
        return {
            "policies": {k: v.to_dict() for k, v in self.policies.items()},
            "savings_vs_run_to_failure": round(self.savings_vs_run_to_failure, 2),
            "savings_vs_fixed_interval": round(self.savings_vs_fixed_interval, 2),
            "threshold": self.threshold,
            "fixed_interval_h": self.fixed_interval_h,
            "thresholds_by_type": self.thresholds_by_type,
            "by_type": {t: {k: v.to_dict() for k, v in p.items()} for t, p in self.by_type.items()},
            "curve": self.curve,
            "lives": self.lives,
        }


def _costs_array(s: LifeSummary, overrides: Mapping[str, Mapping[str, float]] | None) -> np.ndarray:
    c = s.costs.copy()
    for key, fields in (overrides or {}).items():
        rows = np.ones(s.n_lives, bool) if key == "*" else s.type == key
        for f, v in fields.items():
            if f not in COST_FIELDS:
                raise ValueError(f"unknown cost field {f!r}; known: {', '.join(COST_FIELDS)}")
            if not 0.0 <= float(v) <= MAX_COST:  # also rejects NaN
                raise ValueError(f"cost field {f!r} must be between 0 and {MAX_COST:g}, got {v!r}")
            c[rows, COST_FIELDS.index(f)] = float(v)
    return c


def _percentiles(v: np.ndarray) -> dict[str, float | None]:
    v = v[~np.isnan(v)]
    if not len(v):
        return {"n": 0, "p10": None, "p50": None, "p90": None, "mean": None}
    q = np.percentile(v, [10, 50, 90])
    return {
        "n": len(v),
        "p10": round(float(q[0]), 2),
        "p50": round(float(q[1]), 2),
        "p90": round(float(q[2]), 2),
        "mean": round(float(v.mean()), 2),
    }


def _outcome_money(
    c: np.ndarray, outcome: np.ndarray, fa: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(maintenance cost, downtime hours, downtime cost) per life for predictive outcomes."""
    cc = CostColumns.from_matrix(c)
    col = {f: getattr(cc, f)[:, None] for f in COST_FIELDS}
    caught, fail = outcome == CAUGHT, outcome == FAILED
    maint = (
        fa * col["inspection_cost"]
        + caught * (col["inspection_cost"] + col["planned_maintenance_cost"])
        + fail * col["repair_cost"]
    )
    down = caught * col["planned_hours"] + fail * col["repair_hours"]
    return maint, down, down * col["downtime_cost_per_h"]


def evaluate(
    s: LifeSummary, overrides: Mapping[str, Mapping[str, float]] | None = None
) -> BacktestResult:
    """All three policies on the summarised history (optionally with other costs: a what-if)."""
    c = _costs_array(s, overrides)
    types = sorted(s.exposure)
    by_type: dict[str, dict[str, PolicyResult]] = {}
    fixed: dict[str, float | None] = {}
    # predictive at every threshold, per type: (types, thresholds) sums
    maint, down, dcost = _outcome_money(c, s.outcome, s.false_alarms)
    onehot = np.array([s.type == t for t in types], float).reshape(len(types), s.n_lives)
    exp = np.array([s.exposure[t] for t in types])
    op_t = onehot @ s.op_window
    rate = np.divide(onehot @ (maint + dcost), op_t, out=np.zeros_like(op_t), where=op_t > 0)
    total_cost = (rate * exp[:, None]).sum(axis=0)
    # each machine type gets its own threshold: the policy is one AlertPolicy per type
    j_of = {t: _best_index(rate[ti] * exp[ti]) for ti, t in enumerate(types)}
    for t in types:
        rows = s.type == t
        by_type[t] = {
            "run-to-failure": _rtf(s, c, rows, s.exposure[t]),
            "fixed-interval": _fixed_interval(s, c, rows, s.exposure[t]),
            "predictive": _predictive(s, maint, down, dcost, rows, j_of[t], s.exposure[t]),
        }
        fixed[t] = by_type[t]["fixed-interval"].parameter
    totals = {p: _sum(p, [by_type[t][p] for t in types]) for p in POLICIES}
    j = _best_index(total_cost)
    theta = float(s.thresholds[j])
    caught_all = np.zeros(s.n_lives, bool)
    lead_all = np.full(s.n_lives, np.nan)
    for t in types:
        rows = s.type == t
        caught_all[rows] = s.outcome[rows, j_of[t]] == CAUGHT
        lead_all[rows] = s.lead[rows, j_of[t]]
    totals["predictive"].lead_time_h = _percentiles(np.where(caught_all, lead_all, np.nan))
    rtf = totals["run-to-failure"].cost
    curve = []
    for jj, th in enumerate(s.thresholds):
        caught = int((s.outcome[:, jj] == CAUGHT).sum())
        curve.append(
            {
                "threshold": None if math.isinf(th) else float(th),
                "cost": round(float(total_cost[jj]), 2),
                "savings": round(float(rtf - total_cost[jj]), 2),
                "caught": caught,
                "missed": int(s.failed.sum()) - caught,
                "false_alarms": int(s.false_alarms[:, jj].sum()),
                "late_alerts": int(((s.outcome[:, jj] == FAILED) & ~np.isnan(s.lead[:, jj])).sum()),
                "not_acted_on": int(s.dropped[jj]),
            }
        )
    return BacktestResult(
        policies=totals,
        by_type=by_type,
        threshold=_threshold(theta),
        fixed_interval_h=fixed,
        thresholds_by_type={t: _threshold(s.thresholds[j_of[t]]) for t in types},
        curve=curve,
        lives=s.n_lives,
    )


def _threshold(th: float) -> float | None:
    return None if math.isinf(th) else float(th)


def _best_index(cost: np.ndarray) -> int:
    """Cheapest threshold; ties go to the higher one (fewer alerts). The last column is 'never'."""
    best = float(np.min(cost))
    tol = 1e-9 * max(1.0, abs(best))
    return int(np.flatnonzero(cost <= best + tol)[-1])


def _scaled(
    name: str, maint: float, dcost: float, down: float, op: float, exposure: float
) -> PolicyResult:
    f = exposure / op if op > 0 else 0.0
    return PolicyResult(
        policy=name,
        cost=float((maint + dcost) * f),
        maintenance_cost=float(maint * f),
        downtime_cost=float(dcost * f),
        downtime_h=float(down * f),
        operating_h=float(exposure),
        cost_per_operating_h=float((maint + dcost) / op) if op > 0 else 0.0,
    )


def _rtf(s: LifeSummary, c: np.ndarray, rows: np.ndarray, exposure: float) -> PolicyResult:
    f = s.failed[rows]
    cc = CostColumns.from_matrix(c[rows])
    down = float((f * cc.repair_hours).sum())
    r = _scaled(
        "run-to-failure",
        float((f * cc.repair_cost).sum()),
        float((f * cc.repair_hours * cc.downtime_cost_per_h).sum()),
        down,
        float((s.end - s.seen_from)[rows].sum()),
        exposure,
    )
    r.failures = r.missed = int(f.sum())
    return r


def _fixed_interval(
    s: LifeSummary, c: np.ndarray, rows: np.ndarray, exposure: float
) -> PolicyResult:
    """Best fixed interval T for this group (grid over quantiles of the life lengths, plus never)."""
    L, f, cc = s.length[rows], s.failed[rows], CostColumns.from_matrix(c[rows])
    base = L[f] if f.any() else L
    qs = np.linspace(0.0, 1.0, s.config.fi_grid)
    grid: np.ndarray = np.unique(np.quantile(base, qs)) if len(base) else np.zeros(0)
    T = np.r_[grid, NEVER]
    renew, fail, op = fixed_interval_lives(s.start[rows], s.end[rows], f, s.window[0], T[None, :])
    pm, ph = cc.planned_maintenance_cost[:, None], cc.planned_hours[:, None]
    rc, rh, d = cc.repair_cost[:, None], cc.repair_hours[:, None], cc.downtime_cost_per_h[:, None]
    maint = (renew * pm + fail * rc).sum(axis=0)
    down = (renew * ph + fail * rh).sum(axis=0)
    dcost = (renew * ph * d + fail * rh * d).sum(axis=0)
    op = op.sum(axis=0)
    rate = np.divide(maint + dcost, op, out=np.full_like(op, np.inf), where=op > 0)
    j = _best_index(np.where(np.isfinite(rate), rate, np.inf)) if len(L) else len(T) - 1
    r = _scaled(
        "fixed-interval", float(maint[j]), float(dcost[j]), float(down[j]), float(op[j]), exposure
    )
    r.failures = int(f.sum())
    r.missed = int(fail[:, j].sum())
    r.caught = r.failures - r.missed
    r.planned_jobs = int(renew[:, j].sum())
    r.parameter = None if math.isinf(T[j]) else round(float(T[j]), 3)
    return r


def fixed_interval_lives(
    start: np.ndarray, end: np.ndarray, failed: np.ndarray, ws: float, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(renewed at T, failed first, in-window operating hours) of each life under interval ``T``.

    ``T`` broadcasts against the lives (a column per candidate, or one value per life). A life
    reaching T is renewed at T (a failure exactly at T is the just-in-time limit). A life that
    interval would have renewed before the window start is not this policy's life there: it
    counts neither hours nor events (the lives younger than T at the window start are the ones
    the policy would have running, in the proportions it would have them).
    """
    s, e = start[:, None] if T.ndim == 2 else start, end[:, None] if T.ndim == 2 else end
    f = failed[:, None] if T.ndim == 2 else failed
    renew_at = s + T
    inside = np.minimum(renew_at, e) >= ws
    renew = (e - s >= T) & inside
    fail = ~(e - s >= T) & f & inside
    op = np.maximum(0.0, np.minimum(renew_at, e) - np.maximum(s, ws))
    return renew, fail, op


def _predictive(
    s: LifeSummary,
    maint: np.ndarray,
    down: np.ndarray,
    dcost: np.ndarray,
    rows: np.ndarray,
    j: int,
    exposure: float,
) -> PolicyResult:
    r = _scaled(
        "predictive",
        float(maint[rows, j].sum()),
        float(dcost[rows, j].sum()),
        float(down[rows, j].sum()),
        float(s.op_window[rows, j].sum()),
        exposure,
    )
    out = s.outcome[rows, j]
    r.failures = int(s.failed[rows].sum())
    r.caught = int((out == CAUGHT).sum())
    r.missed = r.failures - r.caught
    r.false_alarms = int(s.false_alarms[rows, j].sum())
    lead = s.lead[rows, j]
    r.late_alerts = int(((out == FAILED) & ~np.isnan(lead)).sum())
    r.planned_jobs = r.caught
    r.lead_time_h = _percentiles(np.where(out == CAUGHT, lead, np.nan))
    th = float(s.thresholds[j])
    r.parameter = None if math.isinf(th) else th
    return r


def _sum(name: str, parts: Sequence[PolicyResult]) -> PolicyResult:
    r = PolicyResult(policy=name)
    for p in parts:
        for k in ("cost", "maintenance_cost", "downtime_cost", "downtime_h", "operating_h"):
            setattr(r, k, getattr(r, k) + getattr(p, k))
        for k in ("failures", "caught", "missed", "false_alarms", "late_alerts", "planned_jobs"):
            setattr(r, k, getattr(r, k) + getattr(p, k))
    r.cost_per_operating_h = r.cost / r.operating_h if r.operating_h > 0 else 0.0
    return r


def backtest(
    failures: pd.DataFrame,
    scores: pd.DataFrame,
    costs: Mapping[str, Costs],
    window: tuple[Any, Any],
    **kwargs: Any,
) -> tuple[BacktestResult, LifeSummary]:
    """:func:`summarize` then :func:`evaluate`; returns both (keep the summary for what-ifs)."""
    s = summarize(failures, scores, costs, window, **kwargs)
    return evaluate(s), s


def what_if(summary: LifeSummary, overrides: Mapping[str, Mapping[str, float]]) -> BacktestResult:
    """Re-evaluate with other costs: ``{"pump": {"repair_cost": 9000}, "*": {...}}`` (type or all)."""
    return evaluate(summary, overrides)


def reprice(
    summary: Mapping[str, Any] | None, overrides: Mapping[str, Mapping[str, float]]
) -> dict[str, Any] | None:
    """A stored backtest's summary (JSON) re-evaluated with other costs; None when there is none.

    Raises ValueError on an unknown cost field.
    """
    if summary is None:
        return None
    return what_if(LifeSummary.from_dict(dict(summary)), overrides).to_dict()

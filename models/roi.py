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
start); an alert not acted on because of the capacity limit stays open for ``cooldown_h``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forewarn.assets import Costs

POLICIES: tuple[str, ...] = ("run-to-failure", "fixed-interval", "predictive")
NEVER = math.inf  # threshold / interval meaning "never act"
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(
    float(x) for x in np.round(np.arange(0.02, 1.0, 0.02), 2)
)
_NONE, _CAUGHT, _FAILED = 0, 1, 2  # predictive outcome of a life
_H = 3600.0
_COST_FIELDS = tuple(Costs.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """How alerts are raised and judged; the threshold grid; the optional capacity limit."""

    horizon_h: float = 48.0  # an alert is "true" when the failure follows within this
    min_lead_h: float = 4.0  # ... and at least this much later (time to plan the repair)
    k: int = 3  # consecutive scores at or above the threshold that raise an alert
    cooldown_h: float = 24.0  # no new alert on a machine this long after a false alarm
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    capacity_per_shift: int | None = None  # at most K acted-on alerts per shift, plant-wide
    shift_h: float = 8.0  # shifts are aligned to midnight UTC
    fi_grid: int = 40  # candidate fixed intervals per machine type (plus "never")

    def __post_init__(self) -> None:
        if self.k < 1 or self.horizon_h <= 0 or not 0 <= self.min_lead_h <= self.horizon_h:
            raise ValueError(f"need k >= 1 and 0 <= min_lead_h <= horizon_h > 0, got {self}")


def preventive_cost(c: Costs) -> float:
    """A scheduled preventive job: planned maintenance and its downtime (no inspection needed)."""
    return c.planned_maintenance_cost + c.planned_hours * c.downtime_cost_per_h


@dataclass
class LifeSummary:
    """Everything the cost maths needs, computed once from the history (cost-free parts).

    Per life: machine, type, start/end (hours since the epoch), operating hours, failed, costs.
    Per life and threshold (columns follow ``thresholds``, the last one is "never"): outcome
    (0 none, 1 caught, 2 failed), operating hours until renewal, false alarms, lead time, alerts
    not acted on (capacity).
    """

    config: BacktestConfig
    window: tuple[float, float]
    machine: np.ndarray
    type: np.ndarray
    start: np.ndarray
    end: np.ndarray
    length: np.ndarray
    failed: np.ndarray
    costs: np.ndarray  # (lives, 6) in Costs field order
    exposure: dict[str, float]  # type -> observed operating hours in the window
    machines: dict[str, int]  # type -> machines
    thresholds: np.ndarray
    outcome: np.ndarray
    op: np.ndarray
    false_alarms: np.ndarray
    lead: np.ndarray
    dropped: np.ndarray

    @property
    def n_lives(self) -> int:
        return len(self.machine)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (``never`` stored as null)."""
        th = [None if math.isinf(t) else float(t) for t in self.thresholds]
        return {
            "config": {**asdict(self.config), "thresholds": list(self.config.thresholds)},
            "window": list(self.window),
            "lives": {
                "machine": self.machine.tolist(),
                "type": self.type.tolist(),
                "start": self.start.tolist(),
                "end": self.end.tolist(),
                "failed": self.failed.tolist(),
                "costs": self.costs.tolist(),
            },
            "exposure": self.exposure,
            "machines": self.machines,
            "thresholds": th,
            "outcome": self.outcome.tolist(),
            "op": np.round(self.op, 4).tolist(),
            "false_alarms": self.false_alarms.tolist(),
            "lead": [[None if math.isnan(v) else round(v, 4) for v in r] for r in self.lead],
            "dropped": self.dropped.tolist(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LifeSummary:
        cfg = dict(d["config"])
        cfg["thresholds"] = tuple(cfg["thresholds"])
        lives = d["lives"]
        start, end = np.asarray(lives["start"], float), np.asarray(lives["end"], float)
        n, g = len(start), len(d["thresholds"])
        return cls(
            config=BacktestConfig(**cfg),
            window=(float(d["window"][0]), float(d["window"][1])),
            machine=np.asarray(lives["machine"], dtype=object),
            type=np.asarray(lives["type"], dtype=object),
            start=start,
            end=end,
            length=end - start,
            failed=np.asarray(lives["failed"], bool),
            costs=np.asarray(lives["costs"], float).reshape(n, len(_COST_FIELDS)),
            exposure={k: float(v) for k, v in d["exposure"].items()},
            machines={k: int(v) for k, v in d["machines"].items()},
            thresholds=np.array([NEVER if t is None else t for t in d["thresholds"]], float),
            outcome=np.asarray(d["outcome"], np.int8).reshape(n, g),
            op=np.asarray(d["op"], float).reshape(n, g),
            false_alarms=np.asarray(d["false_alarms"], np.int32).reshape(n, g),
            lead=np.array(
                [[np.nan if v is None else v for v in r] for r in d["lead"]], float
            ).reshape(n, g),
            dropped=np.asarray(d["dropped"], np.int64),
        )


def hours(ts: Any) -> np.ndarray:
    """Timestamps (datetime-like, tz-aware or UTC-naive) -> float hours since the epoch."""
    t = pd.to_datetime(pd.Series(ts), utc=True)
    return ((t - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(float) / _H


def _hour(ts: Any) -> float:
    return float(hours([ts])[0])


def build_lives(
    failures: pd.DataFrame,
    costs: Mapping[str, Costs],
    window: tuple[Any, Any],
    *,
    types: Mapping[str, str] | None = None,
    renewals: pd.DataFrame | None = None,
    history_start: Any = None,
) -> pd.DataFrame:
    """One row per life ending inside ``window``: machine, type, start, end (hours), failed.

    ``costs`` names every machine of the plant. ``failures`` (machine_id, ts[, downtime_h]) may hold
    failures before the window: they date the start of a machine's first life in the window (else
    ``history_start``, else the window start). ``renewals`` (machine_id, ts[, downtime_h]) are
    maintenance jobs from the history: they end a life without a failure (censored).
    """
    ws, we = _hour(window[0]), _hour(window[1])
    h0 = ws if history_start is None else min(ws, _hour(history_start))
    ends: list[pd.DataFrame] = []
    for df, failed, default_h in (
        (failures, True, "repair_hours"),
        (renewals, False, "planned_hours"),
    ):
        if df is None or df.empty:
            continue
        e = pd.DataFrame({"machine": df["machine_id"].astype(str), "end": hours(df["ts"])})
        e["failed"] = failed
        down = df["downtime_h"].to_numpy(float) if "downtime_h" in df else np.full(len(df), np.nan)
        dflt = np.array([getattr(costs[m], default_h) if m in costs else 0.0 for m in e["machine"]])
        e["down"] = np.where(np.isnan(down), dflt, down)
        ends.append(e[(e["machine"].isin(costs.keys())) & (e["end"] <= we)])
    rows = []
    ev = pd.concat(ends) if ends else pd.DataFrame(columns=["machine", "end", "failed", "down"])
    by_machine = {m: g.sort_values("end") for m, g in ev.groupby("machine")}
    for m in sorted(costs):
        start = h0
        g = by_machine.get(m)
        for end, failed, down in (
            [] if g is None else g[["end", "failed", "down"]].itertuples(index=False)
        ):
            if end > ws and end > start:
                rows.append((m, start, float(end), bool(failed)))
            start = max(start, float(end) + float(down))
        if start < we:
            rows.append((m, start, we, False))
    out = pd.DataFrame(rows, columns=["machine", "start", "end", "failed"])
    out["type"] = [(types or {}).get(m, "all") for m in out["machine"]]
    return out


def summarize(
    failures: pd.DataFrame,
    scores: pd.DataFrame,
    costs: Mapping[str, Costs],
    window: tuple[Any, Any],
    *,
    config: BacktestConfig | None = None,
    types: Mapping[str, str] | None = None,
    renewals: pd.DataFrame | None = None,
    history_start: Any = None,
) -> LifeSummary:
    """Split the history into lives and run the predictive policy at every threshold of the grid.

    ``scores`` holds (machine_id, ts, failure_prob) per reading; only scores inside the window count.
    """
    cfg = config or BacktestConfig()
    lives = build_lives(
        failures, costs, window, types=types, renewals=renewals, history_start=history_start
    )
    ws, we = _hour(window[0]), _hour(window[1])
    start, end = lives["start"].to_numpy(float), lives["end"].to_numpy(float)
    failed = lives["failed"].to_numpy(bool)
    machine = lives["machine"].to_numpy(object)
    ltype = lives["type"].to_numpy(object)
    exposure: dict[str, float] = {}
    for t, s, e in zip(ltype, start, end, strict=True):
        exposure[t] = exposure.get(t, 0.0) + max(0.0, e - max(s, ws))
    machines: dict[str, int] = {}
    for m in costs:
        t = (types or {}).get(m, "all")
        machines[t] = machines.get(t, 0) + 1
    th = np.array(sorted({float(x) for x in cfg.thresholds if 0 < x <= 1}) + [NEVER])
    n, g = len(lives), len(th)
    outcome = np.tile(np.where(failed, _FAILED, _NONE).astype(np.int8)[:, None], (1, g))
    op = np.tile((end - start)[:, None], (1, g))
    fa = np.zeros((n, g), np.int32)
    lead = np.full((n, g), np.nan)
    dropped = np.zeros(g, np.int64)
    cand = _candidates(lives, scores, ws, we, cfg.k)
    for j, theta in enumerate(th[:-1]):
        sel = (cand["prev"] < theta) & (cand["min"] >= theta)
        dropped[j] = _run_policy(
            cand["t"][sel], cand["life"][sel], start, end, failed, we, cfg,
            outcome[:, j], op[:, j], fa[:, j], lead[:, j],
        )  # fmt: skip
    return LifeSummary(
        config=cfg,
        window=(ws, we),
        machine=machine,
        type=ltype,
        start=start,
        end=end,
        length=end - start,
        failed=failed,
        costs=np.array(
            [[getattr(costs[m], f) for f in _COST_FIELDS] for m in machine], float
        ).reshape(n, len(_COST_FIELDS)),
        exposure=exposure,
        machines=machines,
        thresholds=th,
        outcome=outcome,
        op=op,
        false_alarms=fa,
        lead=lead,
        dropped=dropped,
    )


def _candidates(
    lives: pd.DataFrame, scores: pd.DataFrame, ws: float, we: float, k: int
) -> dict[str, np.ndarray]:
    """Readings where the k-reading rolling minimum of the score rises, sorted by time.

    With hysteresis "k consecutive scores >= theta", an alert is raised at reading i exactly when
    min(p[i-k+1..i]) >= theta > min(p[i-k..i-1]), i.e. when theta lies in (prev, min]. Computing
    the rolling minimum once serves every threshold.
    """
    empty = {x: np.zeros(0) for x in ("t", "prev", "min")} | {"life": np.zeros(0, np.int64)}
    if scores.empty or lives.empty:
        return empty
    codes = {m: i for i, m in enumerate(sorted(set(lives["machine"])))}
    mc = scores["machine_id"].astype(str).map(codes)
    ok = mc.notna().to_numpy()
    t = hours(scores["ts"])[ok]
    p = pd.to_numeric(scores["failure_prob"], errors="coerce").to_numpy(float)[ok]
    m = mc.to_numpy()[ok].astype(np.int64)
    keep = (t >= ws) & (t <= we) & ~np.isnan(p)
    t, p, m = t[keep], p[keep], m[keep]
    span = max(we - ws, 1.0) * 4 + 1.0
    key = m * span + (t - ws)
    order = np.argsort(key, kind="stable")
    key, t, p, m = key[order], t[order], p[order], m[order]
    # lives sorted by (machine, end): a score belongs to the first life that ends at or after it
    lm = lives["machine"].map(codes).to_numpy(np.int64)
    lkey = lm * span + (lives["end"].to_numpy(float) - ws)
    lorder = np.argsort(lkey, kind="stable")
    pos = np.searchsorted(lkey[lorder], key, side="left")
    inside = pos < len(lorder)
    life = np.full(len(t), -1, np.int64)
    life[inside] = lorder[pos[inside]]
    valid = life >= 0
    lstart = lives["start"].to_numpy(float)
    valid[valid] &= (lm[life[valid]] == m[valid]) & (t[valid] >= lstart[life[valid]])
    t, p, life = t[valid], p[valid], life[valid]
    if not len(t):
        return empty
    # rolling minimum of k scores within each life; -inf until a life has k scores
    new_seg = np.r_[True, life[1:] != life[:-1]]
    seg_start = np.maximum.accumulate(np.where(new_seg, np.arange(len(t)), 0))
    padded = np.r_[np.full(k - 1, np.inf), p]
    rmin = np.lib.stride_tricks.sliding_window_view(padded, k).min(axis=1)
    rmin = np.where(np.arange(len(t)) - seg_start >= k - 1, rmin, -np.inf)
    prev = np.where(new_seg, -np.inf, np.r_[-np.inf, rmin[:-1]])
    up = rmin > prev
    by_time = np.argsort(t[up], kind="stable")
    return {
        "t": t[up][by_time],
        "life": life[up][by_time],
        "prev": prev[up][by_time],
        "min": rmin[up][by_time],
    }


def _run_policy(
    times: np.ndarray,
    life_of: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    failed: np.ndarray,
    we: float,
    cfg: BacktestConfig,
    outcome: np.ndarray,
    op: np.ndarray,
    fa: np.ndarray,
    lead: np.ndarray,
) -> int:
    """Walk the raised alerts in time order (writes the outcome columns); returns alerts dropped."""
    done = np.zeros(len(start), bool)
    cool = np.full(len(start), -np.inf)
    used: dict[int, int] = {}
    dropped = 0
    cap = cfg.capacity_per_shift
    for t, li in zip(times.tolist(), life_of.tolist(), strict=True):
        if done[li] or t < cool[li]:
            continue
        if cap is not None:
            shift = math.floor(t / cfg.shift_h)
            if used.get(shift, 0) >= cap:
                dropped += 1
                cool[li] = t + cfg.cooldown_h  # the unattended alert stays open
                continue
            used[shift] = used.get(shift, 0) + 1
        ttf = end[li] - t
        if failed[li] and ttf <= cfg.horizon_h:
            done[li] = True
            lead[li] = ttf
            if ttf >= cfg.min_lead_h:
                outcome[li] = _CAUGHT
                op[li] = t - start[li]
            continue
        if not failed[li] and ttf < cfg.horizon_h:
            # censored before the horizon passed: nobody knows whether it was a false alarm
            cool[li] = t + cfg.cooldown_h
            continue
        fa[li] += 1
        cool[li] = t + cfg.cooldown_h
    return dropped


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
            "by_type": {t: {k: v.to_dict() for k, v in p.items()} for t, p in self.by_type.items()},
            "curve": self.curve,
            "lives": self.lives,
        }


def _costs_array(s: LifeSummary, overrides: Mapping[str, Mapping[str, float]] | None) -> np.ndarray:
    c = s.costs.copy()
    for key, fields in (overrides or {}).items():
        rows = np.ones(s.n_lives, bool) if key == "*" else s.type == key
        for f, v in fields.items():
            if f not in _COST_FIELDS:
                raise ValueError(f"unknown cost field {f!r}; known: {', '.join(_COST_FIELDS)}")
            c[rows, _COST_FIELDS.index(f)] = float(v)
    return c


def _as_costs(row: np.ndarray) -> Costs:
    return Costs(*(float(x) for x in row))


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
    d = {f: c[:, i][:, None] for i, f in enumerate(_COST_FIELDS)}
    caught, fail = outcome == _CAUGHT, outcome == _FAILED
    maint = (
        fa * d["inspection_cost"]
        + caught * (d["inspection_cost"] + d["planned_maintenance_cost"])
        + fail * d["repair_cost"]
    )
    down = caught * d["planned_hours"] + fail * d["repair_hours"]
    return maint, down, down * d["downtime_cost_per_h"]


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
    op_t = onehot @ s.op
    rate = np.divide(onehot @ (maint + dcost), op_t, out=np.zeros_like(op_t), where=op_t > 0)
    total_cost = (rate * exp[:, None]).sum(axis=0)
    j = _best_index(total_cost)
    for t in types:
        rows = s.type == t
        by_type[t] = {
            "run-to-failure": _rtf(s, c, rows, s.exposure[t]),
            "fixed-interval": _fixed_interval(s, c, rows, s.exposure[t]),
            "predictive": _predictive(s, maint, down, dcost, rows, j, s.exposure[t]),
        }
        fixed[t] = by_type[t]["fixed-interval"].parameter
    totals = {p: _sum(p, [by_type[t][p] for t in types]) for p in POLICIES}
    theta = float(s.thresholds[j])
    totals["predictive"].parameter = None if math.isinf(theta) else theta
    caught_all = s.outcome[:, j] == _CAUGHT
    totals["predictive"].lead_time_h = _percentiles(np.where(caught_all, s.lead[:, j], np.nan))
    rtf = totals["run-to-failure"].cost
    curve = []
    for jj, th in enumerate(s.thresholds):
        caught = int((s.outcome[:, jj] == _CAUGHT).sum())
        curve.append(
            {
                "threshold": None if math.isinf(th) else float(th),
                "cost": round(float(total_cost[jj]), 2),
                "savings": round(float(rtf - total_cost[jj]), 2),
                "caught": caught,
                "missed": int(s.failed.sum()) - caught,
                "false_alarms": int(s.false_alarms[:, jj].sum()),
                "late_alerts": int(
                    ((s.outcome[:, jj] == _FAILED) & ~np.isnan(s.lead[:, jj])).sum()
                ),
                "not_acted_on": int(s.dropped[jj]),
            }
        )
    return BacktestResult(
        policies=totals,
        by_type=by_type,
        threshold=totals["predictive"].parameter,
        fixed_interval_h=fixed,
        curve=curve,
        lives=s.n_lives,
    )


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
    cc = c[rows]
    down = float((f * cc[:, 4]).sum())
    r = _scaled(
        "run-to-failure",
        float((f * cc[:, 1]).sum()),
        float((f * cc[:, 4] * cc[:, 0]).sum()),
        down,
        float(s.length[rows].sum()),
        exposure,
    )
    r.failures = r.missed = int(f.sum())
    return r


def _fixed_interval(
    s: LifeSummary, c: np.ndarray, rows: np.ndarray, exposure: float
) -> PolicyResult:
    """Best fixed interval T for this group (grid over quantiles of the life lengths, plus never)."""
    L, f, cc = s.length[rows], s.failed[rows], c[rows]
    base = L[f] if f.any() else L
    qs = np.linspace(0.0, 1.0, s.config.fi_grid)
    grid: np.ndarray = np.unique(np.quantile(base, qs)) if len(base) else np.zeros(0)
    T = np.r_[grid, NEVER]
    # a life reaching T is renewed at T (a failure exactly at T is the just-in-time limit)
    renew = L[:, None] >= T[None, :]
    fail = ~renew & f[:, None]
    pm, ph, d = cc[:, 2:3], cc[:, 5:6], cc[:, 0:1]
    maint = (renew * pm + fail * cc[:, 1:2]).sum(axis=0)
    down = (renew * ph + fail * cc[:, 4:5]).sum(axis=0)
    dcost = (renew * ph * d + fail * cc[:, 4:5] * d).sum(axis=0)
    op = np.minimum(L[:, None], T[None, :]).sum(axis=0)
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
        float(s.op[rows, j].sum()),
        exposure,
    )
    out = s.outcome[rows, j]
    r.failures = int(s.failed[rows].sum())
    r.caught = int((out == _CAUGHT).sum())
    r.missed = r.failures - r.caught
    r.false_alarms = int(s.false_alarms[rows, j].sum())
    lead = s.lead[rows, j]
    r.late_alerts = int(((out == _FAILED) & ~np.isnan(lead)).sum())
    r.planned_jobs = r.caught
    r.lead_time_h = _percentiles(np.where(out == _CAUGHT, lead, np.nan))
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

"""Maintenance lives: a failure history split into lives, and the alert policy replayed on them.

Pure (no storage, no I/O). :func:`summarize` turns failures, maintenance and failure scores into a
:class:`LifeSummary`: per life its span and whether it failed, and per life and alert threshold
what the predictive policy would have done (caught / failed, operating hours until the renewal,
false alarms, lead time). Nothing here depends on money, so :mod:`models.roi` can re-price the
summary for any costs (a what-if) without replaying the alerts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from forewarn.assets import Costs
from forewarn.money import COST_FIELDS as MONEY_COST_FIELDS
from models.policy import RAISE, AlertPolicy, scan, shift_of, within_capacity

NEVER = math.inf  # threshold / interval meaning "never act"
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(
    float(x) for x in np.round(np.arange(0.02, 1.0, 0.02), 2)
)
NONE, CAUGHT, FAILED = 0, 1, 2  # predictive outcome of a life
_H = 3600.0
COST_FIELDS = MONEY_COST_FIELDS  # the cost matrix columns, in Costs field order


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """The alert policy being tuned (all but its threshold), the threshold grid, the FI grid.

    :meth:`policy_at` is the :class:`models.policy.AlertPolicy` with ``high`` = a grid threshold
    and ``low`` = ``high * low_ratio``: the backtest replays exactly what the engine would run.
    """

    horizon_h: float = 48.0  # an alert is "true" when the failure follows within this
    min_lead_h: float = 4.0  # ... and at least this much later (time to plan the repair)
    k: int = 3  # consecutive scores at or above the threshold that raise an alert
    cooldown_h: float = 24.0  # no new alert on a machine this long after one was raised
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    capacity_per_shift: int | None = None  # at most K alerts per shift and machine type
    shift_h: float = 8.0  # shifts are aligned to midnight UTC
    fi_grid: int = 40  # candidate fixed intervals per machine type (plus "never")
    low_ratio: float = 0.5  # the policy's low threshold as a share of its high one

    def __post_init__(self) -> None:
        if self.k < 1 or self.horizon_h <= 0 or not 0 <= self.min_lead_h <= self.horizon_h:
            raise ValueError(f"need k >= 1 and 0 <= min_lead_h <= horizon_h > 0, got {self}")
        if not 0 <= self.low_ratio < 1:
            raise ValueError(f"need 0 <= low_ratio < 1, got {self.low_ratio}")

    def policy_at(self, threshold: float) -> AlertPolicy:
        """The alert policy this backtest evaluates at one threshold."""
        return AlertPolicy(
            high=threshold,
            low=threshold * self.low_ratio,
            k=self.k,
            cooldown_h=self.cooldown_h,
            horizon_h=self.horizon_h,
            min_lead_h=self.min_lead_h,
            capacity_per_shift=self.capacity_per_shift,
            shift_h=self.shift_h,
        )


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

    @property
    def seen_from(self) -> np.ndarray:
        """Where each life enters the window (its start, or the window start if it began earlier)."""
        return np.asarray(np.maximum(self.start, self.window[0]))

    @property
    def op_window(self) -> np.ndarray:
        """Per life and threshold: operating hours inside the window until the renewal.

        Costs are rates over in-window hours: counting a life's hours before the window would
        dilute the rate of a short window (every machine's age at the window start would count,
        its earlier failures would not).
        """
        return np.asarray(np.maximum(0.0, self.start[:, None] + self.op - self.seen_from[:, None]))

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
            costs=np.asarray(lives["costs"], float).reshape(n, len(COST_FIELDS)),
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
    seconds: np.ndarray = ((t - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(
        float
    )
    return seconds / _H


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
    outcome = np.tile(np.where(failed, FAILED, NONE).astype(np.int8)[:, None], (1, g))
    op = np.tile((end - start)[:, None], (1, g))
    fa = np.zeros((n, g), np.int32)
    lead = np.full((n, g), np.nan)
    dropped = np.zeros(g, np.int64)
    per_life = _scores_by_life(lives, scores, ws, we)
    for j, theta in enumerate(th[:-1]):
        dropped[j] = _run_policy(
            per_life, ltype, start, end, failed, cfg.policy_at(theta),
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
            [[getattr(costs[m], f) for f in COST_FIELDS] for m in machine], float
        ).reshape(n, len(COST_FIELDS)),
        exposure=exposure,
        machines=machines,
        thresholds=th,
        outcome=outcome,
        op=op,
        false_alarms=fa,
        lead=lead,
        dropped=dropped,
    )


def _scores_by_life(
    lives: pd.DataFrame, scores: pd.DataFrame, ws: float, we: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each life's (times, probabilities) in time order: the scores inside the window and the life."""
    out: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros(0), np.zeros(0))] * len(lives)
    if scores.empty or lives.empty:
        return out
    t_all = hours(scores["ts"])
    p_all = pd.to_numeric(scores["failure_prob"], errors="coerce").to_numpy(float)
    m_all = scores["machine_id"].astype(str).to_numpy()
    keep = (t_all >= ws) & (t_all <= we) & ~np.isnan(p_all)
    df = pd.DataFrame({"m": m_all[keep], "t": t_all[keep], "p": p_all[keep]})
    by_m = {m: g.sort_values("t", kind="stable") for m, g in df.groupby("m")}
    lstart = lives["start"].to_numpy(float)
    lend = lives["end"].to_numpy(float)
    for m, idx in lives.groupby("machine").indices.items():
        g = by_m.get(str(m))
        if g is None:
            continue
        t, p = g["t"].to_numpy(), g["p"].to_numpy()
        order = idx[np.argsort(lend[idx], kind="stable")]
        lo = 0
        for li in order:
            # a score belongs to the first life that ends at or after it
            hi_ = int(np.searchsorted(t, lend[li], side="right"))
            a = lo + int(np.searchsorted(t[lo:hi_], lstart[li], side="left"))
            out[li] = (t[a:hi_], p[a:hi_])
            lo = hi_
    return out


def alert_times(
    per_life: list[tuple[np.ndarray, np.ndarray]], pol: AlertPolicy
) -> tuple[list[float], list[int]]:
    """(time, life) of every alert :func:`models.policy.scan` -- the alert engine's rule -- raises
    on each life's scores, the hysteresis starting fresh at each life's start."""
    times: list[float] = []
    owner: list[int] = []
    for li, (t, p) in enumerate(per_life):
        if len(t) < pol.k:
            continue
        d, _ = scan(t, p, pol)
        r = np.flatnonzero(d == RAISE)
        times.extend(t[r].tolist())
        owner.extend([li] * len(r))
    return times, owner


def backtest_alerts(
    scores: pd.DataFrame, pol: AlertPolicy, window: tuple[Any, Any], machines: list[str]
) -> list[tuple[str, float]]:
    """(machine, hours since the epoch) of the alerts the backtest raises on ``scores`` under
    ``pol`` over ``window`` (a history without failures or maintenance: one life per machine)."""
    nocost = {m: Costs(0, 0, 0, 0, 0, 0) for m in machines}
    lives = build_lives(pd.DataFrame(columns=["machine_id", "ts"]), nocost, window)
    ws, we = _hour(window[0]), _hour(window[1])
    times, owner = alert_times(_scores_by_life(lives, scores, ws, we), pol)
    names = lives["machine"].tolist()
    return sorted((str(names[li]), t) for t, li in zip(times, owner, strict=True))


def _run_policy(
    per_life: list[tuple[np.ndarray, np.ndarray]],
    ltype: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    failed: np.ndarray,
    pol: AlertPolicy,
    outcome: np.ndarray,
    op: np.ndarray,
    fa: np.ndarray,
    lead: np.ndarray,
) -> int:
    """Judge the alerts of :func:`alert_times` in time order (writes the outcome columns);
    returns the alerts over capacity."""
    times, owner = alert_times(per_life, pol)
    order = np.argsort(np.asarray(times), kind="stable")
    done = np.zeros(len(start), bool)
    used: dict[tuple[str, int], int] = {}
    dropped = 0
    for o in order.tolist():
        t, li = times[o], owner[o]
        if done[li]:
            continue
        if pol.capacity_per_shift is not None:
            key = (str(ltype[li]), shift_of(t, pol))
            if not within_capacity(used.get(key, 0), pol):
                dropped += 1  # not raised: the machine's alert stays pending (scan's cooldown)
                continue
            used[key] = used.get(key, 0) + 1
        ttf = end[li] - t
        if failed[li] and ttf <= pol.horizon_h:
            done[li] = True
            lead[li] = ttf
            if ttf >= pol.min_lead_h:
                outcome[li] = CAUGHT
                op[li] = t - start[li]
            continue
        if not failed[li] and ttf < pol.horizon_h:
            continue  # censored before the horizon passed: nobody knows whether it was false
        fa[li] += 1
    return dropped

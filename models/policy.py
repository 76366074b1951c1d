"""Alert policy: pure functions over plain data, time passed in. No storage, no I/O.

- :class:`AlertPolicy` (one per machine type) and :class:`PolicySet` (a stored, versioned set)
  say how alerts are raised and judged; the alert engine and the backtest both read them.
- :func:`scan` is THE rule deciding when an alert is raised from a machine's scores (hysteresis:
  raise after ``k`` consecutive scores at or above ``high`` once the cooldown has passed, clear
  once a score falls below ``low``); the alert engine and the backtest both call it.
- :func:`plan_raise` is the de-duplication: one open or acknowledged alert per (machine, mode).
- :func:`severity`, :func:`recommended_action`, :func:`maintenance_kind` describe an alert.
- :func:`data_quality` gates predictions made on stale, missing or out-of-range inputs.
- :func:`cost_threshold` picks the threshold that maximises expected savings (per alert) on history.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

import numpy as np

from forewarn import money
from forewarn.assets import Costs
from forewarn.settings import Settings

Decision = Literal["raise", "clear", "hold", "none"]
Severity = Literal["low", "medium", "high", "critical"]
MaintenanceKind = Literal["inspection", "preventive", "repair"]
OPEN_STATUSES = frozenset({"open", "acknowledged"})


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """How alerts are raised for one machine type, and how the backtest judges them.

    ``high``/``low``: hysteresis thresholds on the failure probability; ``k``: consecutive scores
    at or above ``high`` that raise an alert; ``cooldown_h``: no new alert on a machine this long
    after one was raised; ``horizon_h``: an alert is true when the failure follows within it, and
    ``min_lead_h`` at least that much later; ``capacity_per_shift``: at most this many alerts of
    the type per shift of ``shift_h`` hours (None: no limit).
    """

    high: float = 0.6
    low: float = 0.3
    k: int = 3
    cooldown_h: float = 24.0
    horizon_h: float = 48.0
    min_lead_h: float = 4.0
    capacity_per_shift: int | None = None
    shift_h: float = 8.0

    def __post_init__(self) -> None:
        if not 0 <= self.low < self.high or self.k < 1:
            raise ValueError(f"need 0 <= low < high and k >= 1, got {self}")
        if self.horizon_h <= 0 or not 0 <= self.min_lead_h <= self.horizon_h:
            raise ValueError(f"need 0 <= min_lead_h <= horizon_h > 0, got {self}")
        if self.cooldown_h < 0 or (
            self.capacity_per_shift is not None and self.capacity_per_shift < 1
        ):
            raise ValueError(f"need cooldown_h >= 0 and capacity_per_shift >= 1, got {self}")

    @property
    def never(self) -> bool:
        """A policy whose threshold no probability reaches: it never alerts."""
        return self.high > 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AlertPolicy:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True, slots=True)
class PolicySet:
    """One versioned alert policy: an :class:`AlertPolicy` per machine type and a default.

    ``version`` is the stored version (None: not stored, e.g. the settings' default).
    """

    default: AlertPolicy
    types: Mapping[str, AlertPolicy] = field(default_factory=dict)
    version: int | None = None

    def for_type(self, type_id: str) -> AlertPolicy:
        return self.types.get(type_id, self.default)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "default": self.default.to_dict(),
            "types": {t: p.to_dict() for t, p in sorted(self.types.items())},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], version: int | None = None) -> PolicySet:
        return cls(
            default=AlertPolicy.from_dict(d["default"]),
            types={t: AlertPolicy.from_dict(p) for t, p in (d.get("types") or {}).items()},
            version=version if version is not None else d.get("version"),
        )


def settings_policy(settings: Settings) -> PolicySet:
    """The policy the engine uses before any version is promoted (from the settings)."""
    m = settings.models
    return PolicySet(
        default=AlertPolicy(high=m.alert_high, low=m.alert_low, k=m.alert_k, horizon_h=m.horizon_h)
    )


# Thresholds kept for the hysteresis' callers that only know high/low/k.
@dataclass(frozen=True, slots=True)
class Thresholds:
    high: float
    low: float
    k: int

    def __post_init__(self) -> None:
        if not 0 <= self.low < self.high <= 1 or self.k < 1:
            raise ValueError(f"need 0 <= low < high <= 1 and k >= 1, got {self}")


@dataclass(frozen=True, slots=True)
class HysteresisState:
    """A machine's place in the hysteresis: consecutive high scores, alert active, quiet until
    (hours since the epoch; no alert is raised before it: the cooldown)."""

    consecutive_high: int = 0
    active: bool = False
    quiet_until_h: float = -math.inf


# decisions of :func:`scan`, one per score
NONE, RAISE, HOLD, CLEAR = 0, 1, 2, 3
DECISIONS: tuple[Decision, ...] = ("none", "raise", "hold", "clear")


def scan(
    t_h: Sequence[float] | np.ndarray,
    prob: Sequence[float] | np.ndarray,
    pol: AlertPolicy,
    state: HysteresisState = HysteresisState(),
) -> tuple[np.ndarray, HysteresisState]:
    """THE rule that decides when an alert is raised, for the alert engine and the backtest alike.

    Over one machine's scores in time order (``t_h`` hours since the epoch, ``prob`` failure
    probabilities), returns one decision per score (``NONE``, ``RAISE``, ``HOLD``, ``CLEAR``) and
    the state after the last one. An alert is raised at the ``k``-th consecutive score at or above
    ``high`` while none is active and the cooldown since the previous raise has passed (later
    high scores raise it as soon as the cooldown ends); it stays active (``HOLD`` on high scores)
    until a score below ``low`` clears it. Scores in between change nothing.

    Vectorised: the loop runs once per raise or clear, not once per score.

    >>> pol = AlertPolicy(high=0.6, low=0.3, k=2, cooldown_h=0)
    >>> d, s = scan([0, 1, 2, 3, 4], [0.7, 0.8, 0.9, 0.5, 0.1], pol)
    >>> [DECISIONS[x] for x in d], s.active
    (['none', 'raise', 'hold', 'none', 'clear'], False)
    """
    t = np.asarray(t_h, float)
    p = np.asarray(prob, float)
    n = len(p)
    out = np.zeros(n, np.int8)
    if n == 0:
        return out, state
    hi = p >= pol.high
    lo = p < pol.low
    # length of the run of high scores ending at each score (carrying the previous batch's run)
    idx = np.arange(n)
    last_break = np.maximum.accumulate(np.where(~hi, idx, -1))
    streak = np.where(hi, idx - last_break, 0)
    first_run = last_break < 0
    streak = np.where(hi & first_run, streak + state.consecutive_high, streak)
    eligible = np.flatnonzero(streak >= pol.k)
    t_el = t[eligible]
    lows = np.flatnonzero(lo)
    active, quiet = state.active, state.quiet_until_h
    pos = 0
    raised_at: list[int] = []
    cleared_at: list[int] = []
    while pos < n:
        if active:
            j = int(np.searchsorted(lows, pos))
            if j >= len(lows):
                break
            c = int(lows[j])
            cleared_at.append(c)
            active, pos = False, c + 1
        else:
            j = max(int(np.searchsorted(eligible, pos)), int(np.searchsorted(t_el, quiet)))
            if j >= len(eligible):
                break
            r = int(eligible[j])
            raised_at.append(r)
            active, quiet, pos = True, float(t[r]) + pol.cooldown_h, r + 1
    # active spans: from each raise to its clear (or the end); high scores inside them are holds
    act = np.zeros(n + 1, np.int32)
    if state.active:
        act[0] += 1
    for r in raised_at:
        act[r] += 1
    for c in cleared_at:
        act[c] -= 1
    inside = np.cumsum(act[:n]) > 0
    out[hi & inside] = HOLD
    out[raised_at] = RAISE
    out[cleared_at] = CLEAR
    end_state = HysteresisState(int(streak[-1]), active, quiet)
    return out, end_state


def step(state: HysteresisState, prob: float, th: Thresholds) -> tuple[HysteresisState, Decision]:
    """Advance the hysteresis by one score (:func:`scan` of one score, no cooldown).

    >>> th = Thresholds(high=0.6, low=0.3, k=2)
    >>> s, d = step(HysteresisState(), 0.7, th); d
    'none'
    >>> s, d = step(s, 0.8, th); d
    'raise'
    >>> s, d = step(s, 0.5, th); d, s.active
    ('none', True)
    >>> step(s, 0.1, th)[1]
    'clear'
    """
    pol = AlertPolicy(high=th.high, low=th.low, k=th.k, cooldown_h=0.0)
    d, new = scan([0.0], [prob], pol, state)
    return new, DECISIONS[int(d[0])]


def shift_of(t_h: float, pol: AlertPolicy) -> int:
    """The shift (of ``pol.shift_h`` hours, aligned to midnight UTC) a time falls in."""
    return math.floor(t_h / pol.shift_h)


def within_capacity(raised_in_shift: int, pol: AlertPolicy) -> bool:
    """True when one more alert of this type may be raised in the current shift."""
    return pol.capacity_per_shift is None or raised_in_shift < pol.capacity_per_shift


@dataclass(frozen=True, slots=True)
class RaisePlan:
    action: Literal["insert", "update"]
    alert_id: int | None = None


def plan_raise(open_alerts: Mapping[tuple[str, str], int], machine_id: str, mode: str) -> RaisePlan:
    """Insert a new alert unless one is already open/acknowledged for (machine, mode): then update it."""
    existing = open_alerts.get((machine_id, mode))
    return RaisePlan("insert") if existing is None else RaisePlan("update", existing)


def severity(prob: float, ttf_h: float | None) -> Severity:
    """Severity from failure probability and predicted time to failure (hours; None = unknown)."""
    ttf = math.inf if ttf_h is None or math.isnan(ttf_h) else ttf_h
    if ttf <= 8 or (prob >= 0.9 and ttf <= 24):
        return "critical"
    if prob >= 0.8 or ttf <= 48:
        return "high"
    if prob >= 0.6 or ttf <= 168:
        return "medium"
    return "low"


# Keyword of a failure mode -> what a technician should do. Checked in order; first match wins.
_ACTIONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("tool", "twf", "wear"), "Replace the cutting tool and check tool-wear compensation."),
    (
        ("heat", "hdf", "thermal", "cool", "temp"),
        "Inspect cooling: fans, coolant level and flow, clogged filters.",
    ),
    (
        ("power", "pwf", "electric", "motor"),
        "Check the drive and power supply; inspect motor windings and connections.",
    ),
    (
        ("overstrain", "osf", "load", "torque"),
        "Reduce load or torque; inspect spindle and gearbox for overstrain damage.",
    ),
    (("bearing", "vibration"), "Lubricate or replace the bearing; check alignment and balance."),
    (("seal", "leak"), "Replace seals and inspect for leaks."),
    (("pressure", "valve"), "Inspect valves and pressure lines."),
    (
        ("fan", "hpc", "compressor", "degradation"),
        "Schedule a borescope inspection and compressor wash.",
    ),
)
DEFAULT_ACTION = "Inspect the machine; the failure mode is not specific."


def recommended_action(mode: str | None, sev: Severity) -> str:
    """A human-readable recommendation for the failure mode, prefixed by urgency."""
    text = DEFAULT_ACTION
    m = (mode or "").lower()
    for keys, action in _ACTIONS:
        if any(k in m for k in keys):
            text = action
            break
    urgency = {
        "critical": "Stop or plan repair now",
        "high": "Plan repair within a day",
        "medium": "Plan maintenance this week",
        "low": "Inspect at the next opportunity",
    }[sev]
    return f"{urgency}: {text}"


def maintenance_kind(sev: Severity) -> MaintenanceKind:
    """The maintenance order a severity suggests (what the simulator understands)."""
    return "preventive" if sev in ("high", "critical") else "inspection"


DataQuality = Literal["ok", "stale", "missing", "out_of_range", "flagged"]


def data_quality(
    *,
    prob: float | None,
    ttf_h: float | None,
    ts: datetime,
    now: datetime,
    stale_after_s: float,
    scorer_flag: str = "ok",
) -> DataQuality:
    """``ok`` when a prediction may raise an alert, otherwise why it may not.

    ``flagged``: the scorer already marked its inputs; ``missing``: no probability;
    ``out_of_range``: probability outside [0, 1] or a negative/NaN time to failure;
    ``stale``: inputs older than ``stale_after_s`` at ``now``.
    """
    if scorer_flag != "ok":
        return "flagged"
    if prob is None or math.isnan(prob):
        return "missing"
    if not 0.0 <= prob <= 1.0 or (ttf_h is not None and (math.isnan(ttf_h) or ttf_h < 0)):
        return "out_of_range"
    if (now - ts).total_seconds() > stale_after_s:
        return "stale"
    return "ok"


def unplanned_cost(c: Costs) -> float:
    """Cost of a failure that was not prevented (:func:`forewarn.money.unplanned_failure`)."""
    return money.unplanned_failure(c)


def planned_cost(c: Costs) -> float:
    """Cost of acting on a true alert (:func:`forewarn.money.planned_repair`)."""
    return money.planned_repair(c)


@dataclass(frozen=True, slots=True)
class Labelled:
    """One past champion score and whether a failure followed within the horizon."""

    machine_id: str
    t_h: float  # hours since the epoch
    prob: float
    failed: bool


def alert_outcomes(history: Sequence[Labelled], pol: AlertPolicy) -> tuple[int, int]:
    """(true alerts, false alerts) ``pol`` would have raised on ``history`` (via :func:`scan`)."""
    by_machine: dict[str, list[Labelled]] = {}
    for h in history:
        by_machine.setdefault(h.machine_id, []).append(h)
    true = false = 0
    for rows in by_machine.values():
        rows.sort(key=lambda h: h.t_h)
        d, _ = scan([h.t_h for h in rows], [h.prob for h in rows], pol)
        for i in np.flatnonzero(d == RAISE):
            if rows[int(i)].failed:
                true += 1
            else:
                false += 1
    return true, false


def expected_savings(history: Sequence[Labelled], pol: AlertPolicy, costs: Costs) -> float:
    """Savings against run-to-failure had ``pol`` raised its alerts on ``history``: per ALERT.

    Each raised alert (not each high score) counts once: a true one swaps an unplanned failure
    for a planned repair, a false one costs an inspection.
    """
    true, false = alert_outcomes(history, pol)
    return true * money.avoided_failure(costs) - false * money.inspection(costs)


@dataclass(frozen=True, slots=True)
class ThresholdChoice:
    threshold: float  # > 1 means "never alert": no threshold saves money on this history
    expected_savings: float
    samples: int


NEVER = math.inf
CANDIDATE_THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20)) + (
    0.96,
    0.98,
    0.99,
)


def cost_threshold(
    history: Sequence[Labelled],
    costs: Costs,
    base: AlertPolicy,
    *,
    candidates: Iterable[float] = CANDIDATE_THRESHOLDS,
) -> ThresholdChoice:
    """The ``high`` threshold (``low`` keeps ``base``'s ratio) that maximises expected savings.

    Ties go to the higher threshold, which raises fewer alerts.

    >>> from forewarn.assets import Costs
    >>> c = Costs(1000, 5000, 800, 150, 12, 2)
    >>> h = [Labelled("m", 0, 0.9, True), Labelled("m", 1, 0.2, False)]
    >>> cost_threshold(h, c, AlertPolicy(high=0.6, low=0.3, k=1)).threshold
    0.9
    """
    ratio = base.low / base.high
    best = ThresholdChoice(NEVER, 0.0, len(history))
    for th in sorted(set(candidates), reverse=True):
        pol = replace(base, high=th, low=th * ratio)
        s = expected_savings(history, pol, costs)
        if s > best.expected_savings:
            best = ThresholdChoice(th, s, len(history))
    return best

"""Alert policy: pure functions over plain data, time passed in. No storage, no I/O.

- :func:`step` is the hysteresis: raise after ``k`` consecutive scores at or above ``high``,
  clear once a score falls below ``low``; scores in between keep the current state.
- :func:`plan_raise` is the de-duplication: one open or acknowledged alert per (machine, mode).
- :func:`severity`, :func:`recommended_action`, :func:`maintenance_kind` describe an alert.
- :func:`data_quality` gates predictions made on stale, missing or out-of-range inputs.
- :func:`cost_threshold` picks the threshold that maximises expected savings on history.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from forewarn.assets import Costs

Decision = Literal["raise", "clear", "hold", "none"]
Severity = Literal["low", "medium", "high", "critical"]
MaintenanceKind = Literal["inspection", "preventive", "repair"]
OPEN_STATUSES = frozenset({"open", "acknowledged"})


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
    consecutive_high: int = 0
    active: bool = False


def step(state: HysteresisState, prob: float, th: Thresholds) -> tuple[HysteresisState, Decision]:
    """Advance the hysteresis by one score.

    ``raise`` when the k-th consecutive high score arrives while inactive; ``hold`` for a high score
    while active; ``clear`` when a score below ``low`` arrives while active; ``none`` otherwise.

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
    if prob >= th.high:
        n = state.consecutive_high + 1
        if state.active:
            return HysteresisState(n, True), "hold"
        if n >= th.k:
            return HysteresisState(n, True), "raise"
        return HysteresisState(n, False), "none"
    if prob < th.low:
        return HysteresisState(0, False), ("clear" if state.active else "none")
    return HysteresisState(0, state.active), "none"


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
    """Cost of a failure that was not prevented: downtime hours x cost per hour + repair."""
    return c.repair_hours * c.downtime_cost_per_h + c.repair_cost


def planned_cost(c: Costs) -> float:
    """Cost of acting on a true alert: inspection, planned repair and its shorter downtime."""
    return c.inspection_cost + c.planned_maintenance_cost + c.planned_hours * c.downtime_cost_per_h


def expected_savings(
    history: Sequence[tuple[float, bool]], threshold: float, costs: Costs
) -> float:
    """Savings against run-to-failure if every score >= threshold had raised an alert.

    A true alert swaps an unplanned failure for planned maintenance; a false alert costs an
    inspection; a score below the threshold changes nothing.
    """
    gain = unplanned_cost(costs) - planned_cost(costs)
    total = 0.0
    for p, failed in history:
        if p >= threshold:
            total += gain if failed else -costs.inspection_cost
    return total


@dataclass(frozen=True, slots=True)
class ThresholdChoice:
    threshold: float  # > 1 means "never alert": no threshold saves money on this history
    expected_savings: float
    samples: int


NEVER = math.inf


def cost_threshold(
    history: Iterable[tuple[float, bool]], costs: Costs, *, floor: float = 0.05
) -> ThresholdChoice:
    """The threshold in [floor, 1] that maximises expected savings on ``history``.

    ``history`` holds (predicted probability, failed within the horizon) pairs. Candidates are the
    observed probabilities (savings only change there); ties go to the higher threshold, which
    raises fewer alerts.

    >>> from forewarn.assets import Costs
    >>> c = Costs(1000, 5000, 800, 150, 12, 2)
    >>> cost_threshold([(0.9, True), (0.8, True), (0.4, False), (0.2, False)], c).threshold
    0.8
    """
    pairs = sorted(((float(p), bool(f)) for p, f in history), reverse=True)
    gain = unplanned_cost(costs) - planned_cost(costs)
    best = ThresholdChoice(NEVER, 0.0, len(pairs))
    running = 0.0
    # walk thresholds from high to low; running = savings of threshold == current p
    i = 0
    while i < len(pairs):
        p = pairs[i][0]
        while i < len(pairs) and pairs[i][0] == p:
            running += gain if pairs[i][1] else -costs.inspection_cost
            i += 1
        if p < floor:
            break
        if running > best.expected_savings:
            best = ThresholdChoice(min(p, 1.0), running, len(pairs))
    return best

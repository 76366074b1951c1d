"""The one money module: what each maintenance event costs, by name, and how money is shown.

Pure (no storage, no I/O). Every figure in the product that is money comes from these prices, so
the backtest, the cost-aware thresholds, the live ledger and the dashboard agree on what an
unplanned failure, a planned repair, a preventive job and an inspection cost.

- :func:`unplanned_failure`: a failure nobody prevented (repair + its downtime).
- :func:`planned_repair`: acting on a true alert (inspection + planned job + its shorter downtime).
- :func:`preventive_job`: a scheduled job of the fixed-interval baseline (no inspection needed).
- :func:`inspection`: a false alarm.
- :func:`avoided_failure`: what a true alert saves (unplanned failure - planned repair).
- :func:`downtime`: what hours of downtime cost.
- :func:`downtime_avoided_h`: downtime hours a true alert saves.
- :func:`fmt_money`: a money figure with its currency (``"EUR 1,234"``).

>>> from forewarn.assets import Costs
>>> c = Costs(downtime_cost_per_h=800, repair_cost=2500, planned_maintenance_cost=400,
...           inspection_cost=100, repair_hours=6, planned_hours=1.5)
>>> unplanned_failure(c), planned_repair(c), avoided_failure(c)
(7300.0, 1700.0, 5600.0)
>>> fmt_money(-54762.4, "EUR")
'−EUR 54,762'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from forewarn.assets import Costs

DEFAULT_CURRENCY = "EUR"
COST_FIELDS: tuple[str, ...] = tuple(Costs.__dataclass_fields__)


def unplanned_failure(c: Costs) -> float:
    """A failure that was not prevented: repair cost + repair hours of downtime."""
    return float(c.repair_cost + c.repair_hours * c.downtime_cost_per_h)


def planned_repair(c: Costs) -> float:
    """Acting on a true alert: inspection, planned job and its (shorter) downtime."""
    return float(
        c.inspection_cost + c.planned_maintenance_cost + c.planned_hours * c.downtime_cost_per_h
    )


def preventive_job(c: Costs) -> float:
    """A scheduled preventive job (fixed-interval baseline): planned job and its downtime."""
    return float(c.planned_maintenance_cost + c.planned_hours * c.downtime_cost_per_h)


def inspection(c: Costs) -> float:
    """A false alarm: one inspection (its downtime is not charged; the machine keeps running)."""
    return float(c.inspection_cost)


def avoided_failure(c: Costs) -> float:
    """What a true, timely alert saves: the unplanned failure minus the planned repair."""
    return unplanned_failure(c) - planned_repair(c)


def downtime(hours: float, cost_per_h: float) -> float:
    """What ``hours`` of downtime cost at ``cost_per_h`` (the machine type's lost production)."""
    return float(hours * cost_per_h)


def downtime_avoided_h(c: Costs) -> float:
    """Downtime hours a true, timely alert saves."""
    return float(c.repair_hours - c.planned_hours)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount with its currency (for display; arithmetic stays on plain floats)."""

    amount: float
    currency: str = DEFAULT_CURRENCY

    def __str__(self) -> str:
        return fmt_money(self.amount, self.currency)


def fmt_money(amount: float | None, currency: str = DEFAULT_CURRENCY, *, decimals: int = 0) -> str:
    """``EUR 1,234`` (negative: ``−EUR 1,234``; unknown: ``—``)."""
    if amount is None or (isinstance(amount, float) and math.isnan(amount)):
        return "—"
    sign = "−" if amount < 0 else ""
    return f"{sign}{currency} {abs(amount):,.{decimals}f}"


@dataclass(frozen=True, slots=True)
class CostColumns:
    """The costs of many lives at once: one array per :class:`Costs` field, the same prices.

    The backtest prices thousands of lives under many policies; these are the functions above
    over arrays (same names, same formulas), so there is still one place that says what costs what.
    """

    downtime_cost_per_h: np.ndarray
    repair_cost: np.ndarray
    planned_maintenance_cost: np.ndarray
    inspection_cost: np.ndarray
    repair_hours: np.ndarray
    planned_hours: np.ndarray

    @classmethod
    def from_matrix(cls, c: np.ndarray) -> CostColumns:
        """From an (n, 6) array whose columns follow :data:`COST_FIELDS`."""
        return cls(*(np.asarray(c[:, i], float) for i in range(len(COST_FIELDS))))

    def unplanned_failure(self) -> np.ndarray:
        return np.asarray(self.repair_cost + self.repair_hours * self.downtime_cost_per_h)

    def planned_repair(self) -> np.ndarray:
        return np.asarray(
            self.inspection_cost
            + self.planned_maintenance_cost
            + self.planned_hours * self.downtime_cost_per_h
        )

    def preventive_job(self) -> np.ndarray:
        return np.asarray(
            self.planned_maintenance_cost + self.planned_hours * self.downtime_cost_per_h
        )

    def inspection(self) -> np.ndarray:
        return self.inspection_cost

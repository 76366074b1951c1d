"""Calibration of failure probabilities against what happened: pure, over arrays.

A prediction is labelled once its horizon has passed: 1 when the machine failed within the
horizon after it, else 0. :func:`calibration` gives the reliability diagram (per probability bin:
mean predicted probability, observed failure rate, count), the Brier score and the expected
calibration error (ECE, the count-weighted mean gap between the two).

>>> c = calibration([0.1, 0.1, 0.9, 0.9], [0, 0, 1, 1], bins=10)
>>> c["brier"], c["ece"], c["n"]
(0.01, 0.1, 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

BINS = 10


def calibration(
    probs: Sequence[float] | np.ndarray, outcomes: Sequence[int] | np.ndarray, *, bins: int = BINS
) -> dict[str, Any]:
    """Reliability bins, Brier score and ECE of probabilities against 0/1 outcomes."""
    p = np.clip(np.asarray(probs, float), 0.0, 1.0)
    y = np.asarray(outcomes, float)
    if len(p) != len(y):
        raise ValueError("probabilities and outcomes differ in length")
    if not len(p):
        return {"n": 0, "positives": 0, "brier": None, "ece": None, "bins": []}
    idx = np.minimum((p * bins).astype(int), bins - 1)
    rows = []
    ece = 0.0
    for b in range(bins):
        m = idx == b
        n = int(m.sum())
        if not n:
            continue
        mean_p, rate = float(p[m].mean()), float(y[m].mean())
        ece += n / len(p) * abs(rate - mean_p)
        rows.append(
            {
                "bin": [round(b / bins, 3), round((b + 1) / bins, 3)],
                "mean_predicted": round(mean_p, 4),
                "observed_rate": round(rate, 4),
                "count": n,
            }
        )
    return {
        "n": len(p),
        "positives": int(y.sum()),
        "brier": round(float(np.mean((p - y) ** 2)), 4),
        "ece": round(ece, 4),
        "bins": rows,
    }


def fmt_prob(p: float | None) -> str:
    """A probability as people read it: whole percent, '< 1 %' and '> 99 %' at the ends.

    >>> fmt_prob(0.9996), fmt_prob(0.4237), fmt_prob(0.004)
    ('> 99 %', '42 %', '< 1 %')
    """
    if p is None or np.isnan(p):
        return "–"
    if p > 0.99:
        return "> 99 %"
    if p < 0.01:
        return "< 1 %"
    return f"{100 * p:.0f} %"


def calibration_report(
    rows: Sequence[tuple[str, float, bool]], *, horizon_h: float, bins: int = BINS
) -> dict[str, Any]:
    """Calibration of (machine type, probability, failed) rows: overall and per machine type."""
    by_type: dict[str, tuple[list[float], list[int]]] = {}
    for t, p, f in rows:
        ps, ys = by_type.setdefault(t, ([], []))
        ps.append(p)
        ys.append(int(f))
    return {
        "horizon_h": horizon_h,
        "labelled_on": "a failure within the horizon after the prediction",
        **calibration([r[1] for r in rows], [int(r[2]) for r in rows], bins=bins),
        "by_type": {t: calibration(ps, ys, bins=bins) for t, (ps, ys) in sorted(by_type.items())},
    }

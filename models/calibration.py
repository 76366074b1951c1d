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

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

BINS = 10


# Per probability bin: (bin, count, sum of probabilities, positives, sum of squared errors). The
# report is computed from these sums alone, so the database can sum a plant's predictions and
# send ten rows instead of hundreds of thousands.
BinSums = tuple[int, int, float, int, float]


def bin_index(p: np.ndarray, bins: int = BINS) -> np.ndarray:
    """The reliability bin of each probability (clipped to [0, 1]; 1.0 falls in the last bin)."""
    idx: np.ndarray = np.minimum((np.clip(p, 0.0, 1.0) * bins).astype(int), bins - 1)
    return idx


def bin_sums(
    probs: Sequence[float] | np.ndarray, outcomes: Sequence[int] | np.ndarray, *, bins: int = BINS
) -> list[BinSums]:
    """The per-bin sums of probabilities against 0/1 outcomes (non-empty bins only)."""
    p = np.clip(np.asarray(probs, float), 0.0, 1.0)
    y = np.asarray(outcomes, float)
    if len(p) != len(y):
        raise ValueError("probabilities and outcomes differ in length")
    idx = bin_index(p, bins)
    out = []
    for b in range(bins):
        m = idx == b
        if m.any():
            pm, ym = p[m], y[m]
            out.append(
                (b, int(m.sum()), float(pm.sum()), int(ym.sum()), float(((pm - ym) ** 2).sum()))
            )
    return out


def from_bin_sums(sums: Iterable[BinSums], *, bins: int = BINS) -> dict[str, Any]:
    """Reliability bins, Brier score and ECE from per-bin sums (see :data:`BinSums`)."""
    merged: dict[int, list[float]] = {}  # bin -> [count, sum p, positives, sum squared error]
    for b, n, sp, pos, sq in sums:
        acc = merged.setdefault(int(b), [0, 0.0, 0, 0.0])
        acc[0] += n
        acc[1] += sp
        acc[2] += pos
        acc[3] += sq
    total = int(sum(a[0] for a in merged.values()))
    if not total:
        return {"n": 0, "positives": 0, "brier": None, "ece": None, "bins": []}
    rows = []
    ece = 0.0
    for b in sorted(merged):
        count, sum_p, positives, _ = merged[b]
        mean_p, rate = sum_p / count, positives / count
        ece += count / total * abs(rate - mean_p)
        rows.append(
            {
                "bin": [round(b / bins, 3), round((b + 1) / bins, 3)],
                "mean_predicted": round(mean_p, 4),
                "observed_rate": round(rate, 4),
                "count": int(count),
            }
        )
    return {
        "n": total,
        "positives": int(sum(a[2] for a in merged.values())),
        "brier": round(sum(a[3] for a in merged.values()) / total, 4),
        "ece": round(ece, 4),
        "bins": rows,
    }


def calibration(
    probs: Sequence[float] | np.ndarray, outcomes: Sequence[int] | np.ndarray, *, bins: int = BINS
) -> dict[str, Any]:
    """Reliability bins, Brier score and ECE of probabilities against 0/1 outcomes."""
    return from_bin_sums(bin_sums(probs, outcomes, bins=bins), bins=bins)


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
    return report_from_sums(
        [(t, *s) for t, (ps, ys) in by_type.items() for s in bin_sums(ps, ys, bins=bins)],
        horizon_h=horizon_h,
        bins=bins,
    )


def report_from_sums(
    sums: Iterable[tuple[str, int, int, float, int, float]], *, horizon_h: float, bins: int = BINS
) -> dict[str, Any]:
    """The calibration report from per (machine type, bin) sums, as the database adds them up."""
    by_type: dict[str, list[BinSums]] = {}
    for t, *s in sums:
        by_type.setdefault(str(t), []).append(tuple(s))  # type: ignore[arg-type]
    return {
        "horizon_h": horizon_h,
        "labelled_on": "a failure within the horizon after the prediction",
        **from_bin_sums([s for ss in by_type.values() for s in ss], bins=bins),
        "by_type": {t: from_bin_sums(ss, bins=bins) for t, ss in sorted(by_type.items())},
    }

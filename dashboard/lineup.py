"""The Models page's line-up: per machine type, its champion, challenger and online model side by side.

Pure: frames and dicts in, plain rows and labelled strings out (the page draws them). Batch models
are registered as ``pm-<type>`` (``models.runners.model_registry``), online models checkpoint as
``online-<type>`` or, when scoring is partitioned, ``online-<type>-p<n>`` (``models.runners.scoring``);
any other model name is its own family.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

ROLES = ("champion", "challenger", "online")
# Held-out (out-of-sample) metrics a version may carry, in the order shown, with human labels
METRICS: dict[str, tuple[str, str]] = {  # key -> (label, format)
    "roc_auc": ("ROC-AUC", "{:.3f}"),
    "pr_auc": ("PR-AUC", "{:.3f}"),
    "f1": ("F1", "{:.3f}"),
    "brier": ("Brier score", "{:.3f}"),
    "ece": ("Calibration error (ECE)", "{:.3f}"),
    "rul_mae_h": ("Time-to-failure error (MAE, h)", "{:.1f}"),
    "rul_rmse_h": ("Time-to-failure error (RMSE, h)", "{:.1f}"),
    "rul_interval_coverage": ("Time-to-failure interval coverage", "{:.0%}"),
    "test_machines": ("Held-out machines", "{:.0f}"),
}
_ONLINE = re.compile(r"^online-(?P<type>.+?)(?:-p\d+)?$")


def family(model_name: str) -> str:
    """The machine type a model serves (``pm-cnc`` and ``online-cnc-p3`` -> ``cnc``)."""
    if model_name.startswith("pm-"):
        return model_name[3:]
    m = _ONLINE.match(model_name)
    return m.group("type") if m else model_name


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(float(v)):
        return None
    return float(v)


def metric_lines(metrics: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(label, value) of the known held-out metrics a version carries, in a fixed order."""
    out = []
    for key, (label, fmt) in METRICS.items():
        v = _number((metrics or {}).get(key))
        if v is not None:
            out.append((label, fmt.format(v)))
    return out


def calibration_lines(report: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(label, value) of live calibration: labelled predictions, Brier, ECE (or why there are none)."""
    n = int((report or {}).get("n") or 0)
    if not n:
        return [("Live calibration", "no labelled predictions yet")]
    assert report is not None
    return [
        ("Labelled live predictions", f"{n:,}"),
        ("Live Brier score", f"{report['brier']:.3f}"),
        ("Live calibration error (ECE)", f"{report['ece']:.3f}"),
    ]


def _online(rows: pd.DataFrame) -> dict[str, Any]:
    """One online model from its partitions' checkpoints: counts summed, scores weighted by use."""
    pos = [p if isinstance(p, Mapping) else {} for p in rows["position"]]
    scored = [_number(p.get("scored")) or 0.0 for p in pos]
    total = sum(scored)

    def weighted(key: str) -> float | None:
        pairs = [
            (v, w)
            for p, w in zip(pos, scored, strict=True)
            if (v := _number(p.get(key))) is not None
        ]
        if not pairs:
            return None
        weight = sum(w for _, w in pairs)
        return sum(v * w for v, w in pairs) / weight if weight else pairs[0][0]

    hours = [h for p in pos if (h := _number(p.get("t_h"))) is not None]
    return {
        "names": sorted(rows["name"]),
        # one name for its partitions' checkpoints (online-cnc-p0 … -p15 -> online-cnc)
        "label": f"online-{family(str(rows['name'].iloc[0]))}",
        "partitions": len(rows),
        "scored": int(total),
        "learned": int(sum(_number(p.get("learned")) or 0.0 for p in pos)),
        "pending": int(sum(_number(p.get("pending")) or 0.0 for p in pos)),
        "drift_events": int(sum(_number(p.get("drift_events")) or 0.0 for p in pos)),
        "roc_auc": weighted("roc_auc"),
        "log_loss": weighted("log_loss"),
        # the plant hour it has learned up to (hours since the epoch, plant time)
        "learned_to": datetime.fromtimestamp(max(hours) * 3600.0, UTC) if hours else None,
    }


def lineup(versions: pd.DataFrame, checkpoints: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per family (machine type), sorted: {"champion": version row | None, "challenger": ...,
    "online": summary | None}. Version rows are dicts of ``list_versions`` columns."""
    out: dict[str, dict[str, Any]] = {}
    if not versions.empty:
        for v in versions.to_dict("records"):
            for alias in v.get("aliases") or ():
                if alias in ("champion", "challenger"):
                    slot = out.setdefault(family(str(v["name"])), dict.fromkeys(ROLES))
                    slot[alias] = v
    if not checkpoints.empty:
        fam = checkpoints["name"].map(lambda n: family(str(n)))
        for f, rows in checkpoints.groupby(fam, sort=True):
            out.setdefault(str(f), dict.fromkeys(ROLES))["online"] = _online(rows)
    return dict(sorted(out.items()))


def when(t: Any) -> str:
    """A plant timestamp as people read it (``2026-03-04 17:00 UTC``), or an en dash."""
    if t is None or (isinstance(t, float) and math.isnan(t)) or t is pd.NaT:
        return "–"
    ts = pd.Timestamp(t)
    if pd.isna(ts):
        return "–"
    ts = ts.tz_localize(UTC) if ts.tzinfo is None else ts.tz_convert(UTC)
    return ts.strftime("%Y-%m-%d %H:%M UTC")


def no_challenger(
    champion: Mapping[str, Any] | None, *, retrain_every_h: float, now: datetime | None = None
) -> str:
    """Why a family has no challenger, and when the retrain loop trains one (plant time ``now``)."""
    if champion is None:
        return "No challenger yet: there is no champion either (`forewarn train`)."
    end = champion.get("train_to")
    due = (
        None
        if end is None or pd.isna(end)
        else pd.Timestamp(end) + timedelta(hours=retrain_every_h)
    )
    when_due = ""
    if due is not None:
        overdue = now is not None and due <= pd.Timestamp(now)
        when_due = (
            f" (due since {when(due)}: is `forewarn retrain` running?)"
            if overdue
            else f" (from {when(due)})"
        )
    return (
        f"No challenger yet — `forewarn retrain` trains one once the champion's data is "
        f"{retrain_every_h:.0f} h old in plant time{when_due}, or sooner after drift; it becomes "
        "champion only if it scores better on the latest week."
    )

"""Train on the first part of a stored history, score the rest (the backtest's time split).

Per machine type: readings come back from the database, features are computed by
:func:`models.features.compute_features` (the one implementation serving uses), the failure
classifier learns "failure within the horizon" from readings before the split (labels only from
failures known by then), and its calibrated probabilities for the readings after the split are
written to ``predictions`` (role ``champion``), where the backtest reads them.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from psycopg import Connection

from forewarn.assets import Periods
from forewarn.storage.events import life_events
from forewarn.storage.predictions import upsert_failure_probs
from forewarn.storage.readings import sampled_readings
from models.batch import FailureClassifier
from models.features import FeatureSpec, RegimeNormalizer, compute_features
from models.frames import period_starts, within_periods
from models.labels import failure_within

log = logging.getLogger(__name__)

# The backtest scores one reading per machine every SCORE_EVERY_S (the first in each bucket): wear
# is slow, and scoring every 5-minute reading of a 50-machine, 120-day plant would cost more than it
# tells. Windows of 2 h, 6 h and 24 h of those readings see the wear through the noise.
SCORE_EVERY_S = 1800
WINDOWS = (4, 12, 48)
EWM_SPANS = (12, 48)
NUM_BOOST_ROUND = 200
_H = 3600.0


def _hours(ts: pd.Series, origin: datetime) -> np.ndarray:
    t = pd.to_datetime(ts, utc=True)
    return np.asarray(((t - pd.Timestamp(origin)) / pd.Timedelta(seconds=1)).to_numpy(float) / _H)


def load_readings(
    conn: Connection,
    periods: Periods,
    sensors: list[str],
    until: datetime,
    every_s: float = SCORE_EVERY_S,
) -> pd.DataFrame:
    """One reading per ``every_s`` of every machine of one type before ``until``, taken while it
    had that type (``periods``: machine -> when).

    Columns: machine_id, ts, regime, then one per sensor.
    """
    rows = sampled_readings(conn, sorted(periods), sensors, until, every_s, periods)
    return pd.DataFrame(rows, columns=["machine_id", "ts", "regime", *sensors])


def _mark_renewals(df: pd.DataFrame, events: pd.DataFrame, origin: datetime) -> np.ndarray:
    """True on the first reading after each failure or maintenance (feature windows restart)."""
    flag = np.zeros(len(df), bool)
    t = df["t_h"].to_numpy()
    machines = df["machine_id"].to_numpy()
    bounds = np.flatnonzero(np.r_[True, machines[1:] != machines[:-1], True])
    ev = {m: _hours(g["ts"], origin) for m, g in events.groupby("machine_id")}
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        e = ev.get(machines[a])
        if e is None:
            continue
        pos = np.searchsorted(t[a:b], e, side="right")
        flag[a + pos[pos < b - a]] = True
    return flag


def train_and_score(
    conn: Connection,
    *,
    start: datetime,
    split: datetime,
    end: datetime,
    horizon_h: float,
    seed: int = 0,
    role: str = "champion",
) -> dict[str, Any]:
    """Fit one classifier per machine type on [start, split), score [split, end]; returns metrics."""
    from forewarn.storage.assets import load_registry, machine_type_periods

    reg = load_registry(conn)
    all_events = pd.DataFrame(life_events(conn, end), columns=["machine_id", "ts", "event"])
    periods = machine_type_periods(conn)
    split_h = (split - start).total_seconds() / _H
    metrics: dict[str, Any] = {}
    for mt in reg.types:
        sensors = [s.name for s in mt.sensors]
        had = periods.get(mt.id, {})
        df = load_readings(conn, had, sensors, end) if had else pd.DataFrame()
        if df.empty:
            continue
        # a machine's readings and events while it had this type; taking it starts a new life
        events = within_periods(all_events, had)
        failures = events[events["event"] == "failure"]
        fail_h = {m: _hours(g["ts"], start).tolist() for m, g in failures.groupby("machine_id")}
        taken = [(m, t, "type") for m, ts in period_starts(had).items() for t in ts]
        renewals = (
            pd.concat([events, pd.DataFrame(taken, columns=events.columns)]) if taken else events
        )
        df["t_h"] = _hours(df["ts"], start)
        df["maintenance"] = _mark_renewals(df, renewals, start)
        train = (df["t_h"] < split_h).to_numpy()
        regime_col = "regime" if df["regime"].notna().any() else None
        norm = RegimeNormalizer.fit(df[train], sensors, regime_col=regime_col)
        spec = FeatureSpec(
            sensors=tuple(sensors), windows=WINDOWS, ewm_spans=EWM_SPANS, time_col="t_h"
        )
        X = compute_features(df, spec, norm)
        # labels from what was known at the split: a reading is positive when a failure
        # followed within the horizon, unknown when the horizon reaches past the split
        known = {m: [x for x in v if x < split_h] for m, v in fail_h.items()}
        y = failure_within(df, known, horizon_h, now=split_h, time_col="t_h").to_numpy()
        rows = np.flatnonzero(train & ~np.isnan(y))
        if len(rows) == 0 or len(np.unique(y[rows])) < 2:
            log.warning("type %s: no failures before the split, not scored", mt.id)
            continue
        groups = df["machine_id"].to_numpy()[rows]
        clf = FailureClassifier(
            horizon=horizon_h,
            num_boost_round=NUM_BOOST_ROUND,
            seed=seed,
            **_calibration(len(np.unique(groups))),
        )
        clf.fit(X.iloc[rows], y[rows], groups=groups)
        test = ~train
        p = clf.predict_proba(X[test])
        _write_predictions(conn, df.loc[test, ["machine_id", "ts"]], p, role)
        y_true = failure_within(df, fail_h, horizon_h, now=np.inf, time_col="t_h").to_numpy()[test]
        metrics[mt.id] = {
            "train_rows": len(rows),
            "scored_rows": int(test.sum()),
            "positives_train": int(y[rows].sum()),
            **_auc(y_true, p),
            **{k: round(v, 4) for k, v in clf.metrics.items()},
        }
        log.info("type %s: %s", mt.id, metrics[mt.id])
    conn.commit()
    return metrics


def _calibration(machines: int) -> dict[str, Any]:
    """Calibrate on held-out machines, at least two of them (the calibrator is cross-fitted over
    two halves); a type with fewer than four machines keeps the raw booster scores."""
    if machines < 4:
        return {"calibration": "none"}
    return {"calibration_fraction": max(0.2, 2.5 / machines)}


def _auc(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    ok = ~np.isnan(y)
    if len(np.unique(y[ok])) < 2:
        return {}
    return {
        "test_roc_auc": round(float(roc_auc_score(y[ok], p[ok])), 4),
        "test_pr_auc": round(float(average_precision_score(y[ok], p[ok])), 4),
    }


def _write_predictions(conn: Connection, keys: pd.DataFrame, p: np.ndarray, role: str) -> None:
    upsert_failure_probs(conn, keys["machine_id"].tolist(), keys["ts"].tolist(), p.tolist(), role)

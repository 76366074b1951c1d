"""Training runner: fit one bundle per machine type, register it, and decide its alias.

The first version of a type becomes champion. A later version becomes challenger and replaces the
champion only if it scores better on recent held-out data that neither trained on.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import psycopg
from psycopg import Connection
from sklearn.metrics import average_precision_score

from forewarn.assets import MachineType
from forewarn.clock import now_on
from forewarn.errors import StorageUnavailable
from forewarn.settings import Settings
from forewarn.storage import audit
from forewarn.storage.assets import machine_type_periods
from forewarn.storage.model_registry import newest_training_end
from forewarn.storage.readings import latest_reading_time
from models.bundle import ModelBundle, features_for
from models.frames import TIME_COL, failure_modes, failure_times, to_hours
from models.labels import failure_within
from models.runners.history import events_from_db, hourly_from_db, machine_types, members
from models.runners.model_registry import load_alias, model_name, register_version, set_alias

log = logging.getLogger(__name__)

HOLDOUT_H = 7 * 24.0  # recent data kept out of a challenger's training, to compare it fairly


@dataclass
class TrainResult:
    type_id: str
    name: str
    version: int
    alias: str
    metrics: dict[str, float]
    compared: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type_id,
            "model": self.name,
            "version": self.version,
            "alias": self.alias,
            "metrics": self.metrics,
            "compared": self.compared,
        }


def fit_type(
    t: MachineType, hourly: pd.DataFrame, events: pd.DataFrame, *, horizon_h: float, seed: int
) -> ModelBundle:
    """Fit a bundle for one machine type from its hourly frame and events."""
    sensors = [s.name for s in t.sensors]
    return ModelBundle.fit(
        t.id,
        hourly,
        failure_times(events),
        failure_modes(events),
        sensors,
        horizon_h=horizon_h,
        now_h=float(hourly[TIME_COL].max()),
        seed=seed,
    )


def pr_auc_on(
    bundle: ModelBundle, hourly: pd.DataFrame, events: pd.DataFrame, now_h: float
) -> float | None:
    """PR-AUC of a bundle on labelled rows of ``hourly`` (None when there is nothing to judge)."""
    y = failure_within(
        hourly, failure_times(events), bundle.horizon_h, now=now_h, time_col=TIME_COL
    )
    known = y.notna().to_numpy()
    if known.sum() == 0 or y[known].nunique() < 2:
        return None
    X = features_for(hourly, bundle.spec, bundle.normalizer)
    p = bundle.classifier.predict_proba(X[known])
    return float(average_precision_score(y[known], p))


def register_bundle(
    conn: Connection,
    bundle: ModelBundle,
    hourly: pd.DataFrame,
    *,
    actor: str,
    holdout: tuple[pd.DataFrame, pd.DataFrame, float] | None = None,
) -> TrainResult:
    """Store a new version; make it champion if none, else challenger and promote if better."""
    name = model_name(bundle.type_id)
    stored = register_version(
        conn,
        name,
        bundle.save(),
        features=bundle.features,
        params={"horizon_h": bundle.horizon_h, "sensors": list(bundle.spec.sensors)},
        metrics=bundle.metrics,
        train_from=pd.Timestamp(hourly["ts"].min()).to_pydatetime(),
        train_to=pd.Timestamp(hourly["ts"].max()).to_pydatetime(),
    )
    champion = load_alias(conn, name, "champion")
    compared: dict[str, float] = {}
    if champion is None:
        set_alias(conn, stored, "champion", actor=actor)
        alias = "champion"
    else:
        set_alias(conn, stored, "challenger", actor=actor)
        alias = "challenger"
        if holdout is not None:
            h_hourly, h_events, now_h = holdout
            new = pr_auc_on(bundle, h_hourly, h_events, now_h)
            old = pr_auc_on(ModelBundle.load(champion.artifact), h_hourly, h_events, now_h)
            if new is not None and old is not None:
                compared = {"challenger_pr_auc": new, "champion_pr_auc": old}
                if new > old:
                    set_alias(conn, stored, "champion", actor=actor)
                    alias = "champion"
    log.info("registered %s v%d as %s %s", name, stored.version, alias, compared)
    return TrainResult(bundle.type_id, name, stored.version, alias, bundle.metrics, compared)


def train_from_db(
    conn: Connection,
    *,
    horizon_h: float,
    seed: int = 0,
    actor: str = "train",
    only_missing: bool = False,
) -> list[TrainResult]:
    """Train every machine type on the database's history (recent week held out for comparison)."""
    now = latest_reading_time(conn)
    if now is None:
        return []
    results = []
    periods = machine_type_periods(conn)
    for t, current in machine_types(conn):
        if only_missing and load_alias(conn, model_name(t.id), "champion") is not None:
            continue
        sensors = [s.name for s in t.sensors]
        cutoff = now - timedelta(hours=HOLDOUT_H)
        # every machine's readings from the periods it had this type (see models.runners.history)
        had = periods.get(t.id, {})
        ids = members(current, had)
        train = hourly_from_db(conn, ids, sensors, None, cutoff, had)
        train_events = events_from_db(conn, ids, None, cutoff, had)
        try:
            bundle = fit_type(t, train, train_events, horizon_h=horizon_h, seed=seed)
        except ValueError as exc:
            log.warning("not training %s: %s", t.id, exc)
            continue
        recent = hourly_from_db(conn, ids, sensors, cutoff, None, had)
        recent_events = events_from_db(conn, ids, cutoff, None, had)
        with conn.transaction():
            results.append(
                register_bundle(
                    conn,
                    bundle,
                    train,
                    actor=actor,
                    holdout=(recent, recent_events, float(to_hours(now))),
                )
            )
    return results


def train_from_frames(
    conn: Connection,
    types: list[tuple[MachineType, list[str]]],
    readings: pd.DataFrame,
    events: pd.DataFrame,
    *,
    horizon_h: float,
    seed: int = 0,
    actor: str = "bootstrap",
) -> list[TrainResult]:
    """Train from in-memory history (the demo's simulated bootstrap), one bundle per type."""
    from models.frames import hourly_frame

    results = []
    for t, ids in types:
        sensors = [s.name for s in t.sensors]
        mask = readings["machine_id"].isin(ids).to_numpy()
        ev = events[events["machine_id"].isin(ids)]
        hourly = hourly_frame(readings[mask], ev, sensors)
        if hourly.empty:
            continue
        try:
            bundle = fit_type(t, hourly, ev, horizon_h=horizon_h, seed=seed)
        except ValueError as exc:  # too little history for this type: say so, train the others
            log.warning("not training %s: %s", t.id, exc)
            continue
        with conn.transaction():
            results.append(register_bundle(conn, bundle, hourly, actor=actor))
    return results


def retrain_reason(
    conn: Connection, *, every_s: float, min_gap_s: float, now: datetime
) -> str | None:
    """Why a retrain is due now ('schedule' or 'drift'), or None.

    Due on schedule ``every_s`` after the newest model version, or earlier when a drift detector
    fired since then, but never within ``min_gap_s`` of it (detectors fire in bursts).
    """
    # plant time: a version counts from the end of its training window, not from its wall-clock
    # creation, so an accelerated or replayed plant retrains on its own schedule
    last = newest_training_end(conn)
    if last is None:
        return "schedule"
    age = (now - last).total_seconds()
    if age >= every_s:
        return "schedule"
    if age < min_gap_s:
        return None
    return "drift" if audit.count_since(conn, "drift", last) > 0 else None


def run_retrain_loop(
    settings: Settings,
    url: str,
    *,
    stop: threading.Event,
    every_s: float,
    min_gap_s: float,
    check_s: float = 60.0,
) -> None:
    """Retrain on schedule or after drift until ``stop``; challengers promote only if better."""
    from forewarn.storage.db import connect

    while not stop.is_set():
        try:
            with connect(url, autocommit=True) as conn:
                reason = retrain_reason(
                    conn, every_s=every_s, min_gap_s=min_gap_s, now=now_on(conn, settings.clock)
                )
                if reason is not None:
                    results = train_from_db(
                        conn, horizon_h=settings.models.horizon_h, seed=int(time.time()) % 10_000
                    )
                    audit.record(conn, "retrain", "retrain", reason, [r.as_dict() for r in results])
                    log.info(
                        "retrained (%s): %s",
                        reason,
                        [(r.name, r.version, r.alias) for r in results],
                    )
        except (StorageUnavailable, psycopg.OperationalError) as exc:
            log.warning("retrain: database unavailable (%s)", exc)
        stop.wait(check_s)

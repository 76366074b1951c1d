"""Does the live ledger agree with the backtest? The comparison half of ``backtest --live-check``.

The command runs the real pipeline (simulator -> MQTT -> ingest -> scoring -> alert engine -> API
-> the simulated maintenance crew acting on alerts) on a simulated plant and hands this module the
database it left and the same plant simulated again, untouched (same seed and machines: the
run-to-failure history the crew's work prevented). Here:

- ``ledger_savings``: the live ledger's net savings over the run's plant-time window (avoided
  failures credited, false alarms charged; :func:`forewarn.storage.roi.ledger`).
- ``backtest_savings``: the backtest's savings against run-to-failure of the SAME live policy
  version (not re-tuned) with the SAME champion models, replayed by :func:`models.policy.scan` on
  the untouched history scored at the hours the live scorer scored, over the same window.
- ``relative_gap`` = |ledger - backtest| / |backtest|.

The counterfactual is exact until the crew's first intervention on a machine (per-machine random
streams), so the two differ by what the crew did (its inspections find nothing in a share of the
alerts and dismiss them; its repairs take time), by the ledger's per-alert accounting against the
backtest's rates over operating hours, and by lives cut at the window's ends.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from psycopg import Connection

from forewarn.settings import Settings
from forewarn.storage import roi as roi_store
from forewarn.storage.assets import load_costs
from models.bundle import ModelBundle, features_for
from models.frames import hourly_frame, messages_frames
from models.lives import BacktestConfig, summarize
from models.oos import Tuned, money_by_policy, price
from models.runners.alerting import current_policy
from models.runners.backtest import SCORE_AVAILABLE_AFTER_H
from models.runners.history import machine_types
from models.runners.model_registry import load_alias, model_name

log = logging.getLogger(__name__)


def counterfactual_scores(
    conn: Connection, messages: list[Any], live_times: list[tuple[str, datetime]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scores, events) of the untouched history, scored by the live champions at live hours."""
    readings, events = messages_frames(messages)
    keep = {(m, pd.Timestamp(ts).tz_convert("UTC")) for m, ts in live_times}
    parts = []
    for t, ids in machine_types(conn):
        stored = load_alias(conn, model_name(t.id), "champion")
        if stored is None:
            continue
        bundle = ModelBundle.load(stored.artifact)
        sensors = [s.name for s in t.sensors]
        hourly = hourly_frame(
            readings[readings["machine_id"].isin(ids)],
            events[events["machine_id"].isin(ids)],
            sensors,
        )
        if hourly.empty:
            continue
        prob = bundle.classifier.predict_proba(features_for(hourly, bundle.spec, bundle.normalizer))
        parts.append(
            pd.DataFrame(
                {
                    "machine_id": hourly["machine_id"].to_numpy(),
                    "ts": hourly["ts"],
                    "failure_prob": prob,
                }
            )
        )
    scores = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["machine_id", "ts", "failure_prob"])
    )
    at_live = [
        (m, pd.Timestamp(ts)) in keep
        for m, ts in zip(scores["machine_id"], scores["ts"], strict=True)
    ]
    scores = scores[np.asarray(at_live, bool)].copy()
    # a prediction exists once its hour is complete, as in the backtest of stored predictions
    scores["ts"] = pd.to_datetime(scores["ts"], utc=True) + pd.Timedelta(
        hours=SCORE_AVAILABLE_AFTER_H
    )
    return scores, events


def compare(
    conn: Connection,
    settings: Settings,
    messages: list[Any],
    window: tuple[datetime, datetime],
    history_start: datetime,
) -> dict[str, Any]:
    """Ledger savings of the live run against the backtest of the same policy on the same plant."""
    pols = current_policy(conn, settings)
    costs, types, _ = load_costs(conn)
    led = roi_store.ledger(conn, since=window[0], until=window[1])["totals"]
    live_times = roi_store.champion_prediction_times(conn, since=window[0], until=window[1])
    scores, events = counterfactual_scores(conn, messages, live_times)
    failures = events[events["event"] == "failure"][["machine_id", "ts"]].copy()
    base = pols.default
    thresholds = {t: pols.for_type(t).high for t in set(types.values())}
    config = BacktestConfig(
        horizon_h=base.horizon_h,
        min_lead_h=base.min_lead_h,
        k=base.k,
        cooldown_h=base.cooldown_h,
        thresholds=tuple(sorted(set(thresholds.values()))),
        capacity_per_shift=base.capacity_per_shift,
        shift_h=base.shift_h,
        low_ratio=base.low / base.high,
    )
    summary = summarize(
        failures, scores, costs, window, config=config, types=types, history_start=history_start
    )
    priced = price(summary, Tuned(thresholds=thresholds, intervals={}))
    money = money_by_policy([priced], sorted(costs), np.ones((1, len(costs))))
    rtf, pred = float(money["run-to-failure"][0]), float(money["predictive"][0])
    backtest_savings = rtf - pred
    ledger_savings = float(led["net_savings"])
    gap = abs(ledger_savings - backtest_savings) / max(abs(backtest_savings), 1e-9)
    return {
        "ledger_savings": round(ledger_savings, 2),
        "backtest_savings": round(backtest_savings, 2),
        "relative_gap": round(gap, 4),
        "window": [window[0].isoformat(), window[1].isoformat()],
        "policy_version": pols.version,
        "thresholds_by_type": thresholds,
        "ledger": {k: (round(v, 2) if isinstance(v, float) else v) for k, v in led.items()},
        "backtest": {
            "cost_run_to_failure": round(rtf, 2),
            "cost_predictive": round(pred, 2),
            "failures": priced.failures,
            "caught": priced.caught,
            "false_alarms": priced.false_alarms,
            "scores": len(scores),
            "live_predictions": len(live_times),
        },
    }


def plant_window(clock: list[str], start: datetime) -> tuple[datetime, datetime]:
    """The live run's plant-time window from the demo's clock (falls back to the plant start)."""
    lo = datetime.fromisoformat(clock[0]) if clock and clock[0] else start
    hi = datetime.fromisoformat(clock[1]) if len(clock) > 1 and clock[1] else lo + timedelta(days=1)
    return lo, hi

"""Streaming alerts: the alert policy over the streaming scores (role ``stream`` predictions).

The same `models.policy` hysteresis and de-duplication as the champion path, with the fixed
thresholds of the settings (the cost-optimal per-type thresholds are fitted to the champion's
probability, not to this score). Each machine's position and hysteresis live in
``alert_stream_state``, written in the same transaction as the alerts they caused. While the fault
persists nothing is rewritten (the score repeats every second; an alert update each time would
flood `/v1/alerts/changes`); a score below the low threshold clears the open anomaly alert (status `cleared`, as the champion path does; `dismissed` is a person calling it a false alarm).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import psycopg

from forewarn.settings import Settings
from forewarn.storage import alerts as store
from forewarn.storage import stream as stream_store
from models import policy
from models.runners.alerting import close_overtaken

MODE = "anomaly"
SYSTEM_ACTOR = "system"
SINCE_MARGIN = timedelta(minutes=2)  # a partition's predictions committed this late still count


def _alert(p: dict[str, Any], now: datetime) -> store.NewAlert:
    sev: policy.Severity = "critical" if p["failure_prob"] >= 0.99 else "high"
    sensors = ", ".join(p["contributions"] or {}) or "a sensor"
    return store.NewAlert(
        machine_id=p["machine_id"],
        mode=MODE,
        severity=sev,
        failure_prob=p["failure_prob"],
        ttf_h=None,
        ttf_low_h=None,
        ttf_high_h=None,
        contributions=p["contributions"],
        model_version_id=None,
        inputs_age_s=(now - p["ts"]).total_seconds(),
        recommended_action=f"Inspect now: abrupt change in {sensors} "
        f"({p['anomaly']:.1f} standard deviations from this machine's normal).",
    )


def run_stream_alerting_once(
    conn: psycopg.Connection,
    settings: Settings,
    now: datetime,
    since: datetime,
    *,
    owns: Callable[[str], bool] | None = None,
) -> tuple[int, datetime | None]:
    """Apply the policy to the streaming scores with ts > ``since`` not applied yet.

    ``owns`` picks the machines of this worker's partitions (None: every machine). Only the
    machines with new scores are touched: their overtaken alerts are closed first (as
    :func:`models.runners.alerting.run_alerting_once` does), then their states advance. Returns
    (alerts raised, newest ts applied). Runs inside the caller's (fenced) transaction.
    """
    m = settings.models
    th = policy.Thresholds(high=m.alert_high, low=m.alert_low, k=m.alert_k)
    preds = stream_store.unapplied_stream_predictions(conn, since)
    if owns is not None:
        preds = [p for p in preds if owns(p["machine_id"])]
    if not preds:
        return 0, None
    ids = sorted({p["machine_id"] for p in preds})
    close_overtaken(conn, now, machines=ids)
    open_ = {k: v for k, v in store.open_alerts(conn, ids).items() if k[1] == MODE}
    raised = 0
    newest: datetime | None = None
    current: dict[str, tuple[policy.HysteresisState, datetime]] = {}
    for p in preds:
        mid = p["machine_id"]
        newest = p["ts"] if newest is None or p["ts"] > newest else newest
        state = current[mid][0] if mid in current else _stored(p)
        quality = policy.data_quality(
            prob=p["failure_prob"],
            ttf_h=None,
            ts=p["ts"],
            now=now,
            stale_after_s=m.stale_after_s,
            scorer_flag=p["data_quality"],
        )
        if quality == "ok":
            state, decision = policy.step(state, p["failure_prob"], th)
            key = (mid, MODE)
            if decision == "raise" and policy.plan_raise(open_, *key).action == "insert":
                row = store.insert_alert(conn, _alert(p, now), actor=SYSTEM_ACTOR, now=now)
                open_[key] = int(row["id"])
                raised += 1
            elif decision == "clear" and key in open_:
                alert = store.get_alert(conn, open_[key])
                if alert is not None and alert["status"] == "open":
                    store.transition(
                        conn,
                        open_.pop(key),
                        "cleared",
                        actor=SYSTEM_ACTOR,
                        reason=f"cleared: streaming score {p['failure_prob']:.3f} < {th.low}",
                        now=now,
                    )
        current[mid] = (state, p["ts"])
    saved = [(mid, st.consecutive_high, st.active, last) for mid, (st, last) in current.items()]
    stream_store.save_stream_states(conn, saved, now=now)
    return raised, newest


def _stored(p: dict[str, Any]) -> policy.HysteresisState:
    """The machine's hysteresis as stored (a fresh one for a machine without a state row)."""
    if p["last_ts"] is None:
        return policy.HysteresisState()
    return policy.HysteresisState(int(p["consecutive_high"]), bool(p["active"]))


def initial_since(now: datetime) -> datetime:
    """Where a new worker starts reading streaming scores (their ts is plant time)."""
    return now - timedelta(minutes=10)


def next_since(since: datetime, newest: datetime | None) -> datetime:
    return since if newest is None else max(since, newest - SINCE_MARGIN)

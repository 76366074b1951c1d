"""The alert runner: champion predictions -> hysteresis -> raised, refreshed, cleared, escalated alerts.

Hysteresis state and each machine's position in the prediction stream live in ``alert_state``,
written in the same transaction as the alerts they caused, so a restart neither repeats nor skips.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import defaultdict
from datetime import datetime
from typing import Any

import psycopg

from forewarn.clock import now_on
from forewarn.health import LoopHealth
from forewarn.settings import Settings
from forewarn.storage import alerts as store
from forewarn.storage.registry import load_registry
from models import policy

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"
UNSPECIFIED_MODE = "unspecified"
MIN_THRESHOLD_SAMPLES = 50


def _new_alert(p: dict[str, Any], now: datetime) -> store.NewAlert:
    sev = policy.severity(p["failure_prob"], p["rul_h"])
    return store.NewAlert(
        machine_id=p["machine_id"],
        mode=p["mode"] or UNSPECIFIED_MODE,
        severity=sev,
        failure_prob=p["failure_prob"],
        ttf_h=p["rul_h"],
        ttf_low_h=p["rul_low_h"],
        ttf_high_h=p["rul_high_h"],
        contributions=p["contributions"],
        model_version_id=p["model_version_id"],
        inputs_age_s=(now - p["ts"]).total_seconds(),
        recommended_action=policy.recommended_action(p["mode"], sev),
    )


def run_alerting_once(conn: psycopg.Connection, settings: Settings, now: datetime) -> int:
    """Process every new champion prediction and escalate overdue alerts; returns alerts raised."""
    m = settings.models
    fixed = policy.Thresholds(high=m.alert_high, low=m.alert_low, k=m.alert_k)
    raised = 0
    with conn.transaction():
        close_overtaken(conn, now)
        preds = store.new_champion_predictions(conn)
        by_machine: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for p in preds:
            by_machine[p["machine_id"]].append(p)
        machines = list(by_machine)
        conditions = store.machine_conditions(conn, machines)
        states = store.load_states(conn, machines)
        open_ = store.open_alerts(conn, machines)
        overrides = store.load_thresholds(conn)
        new_states: list[tuple[str, int, bool, datetime]] = []
        flags: list[tuple[str, datetime, str]] = []
        for machine, rows in by_machine.items():
            n, active = states.get(machine, (0, False))
            machine_state, reset_at = conditions.get(machine, ("running", None))
            if reset_at is not None and rows[0]["ts"] < reset_at:
                n, active = 0, False  # failed or worked on since: its risk starts over
            state = policy.HysteresisState(n, active)
            type_id = rows[0]["type_id"]
            th = fixed
            if type_id in overrides:
                high, low = overrides[type_id]
                th = policy.Thresholds(high=min(high, 1.0), low=low, k=m.alert_k)
            for p in rows:
                if machine_state != "running" or (reset_at is not None and p["ts"] < reset_at):
                    # the machine is down or under maintenance, or has failed or been worked on
                    # since this prediction's data: no alert about a past that is over
                    continue
                quality = policy.data_quality(
                    prob=p["failure_prob"],
                    ttf_h=p["rul_h"],
                    ts=p["ts"],
                    now=now,
                    stale_after_s=m.stale_after_s,
                    scorer_flag=p["data_quality"],
                )
                if quality != "ok":
                    if quality != "flagged":
                        flags.append((machine, p["ts"], quality))
                    continue  # low data quality: no alert and no effect on the hysteresis
                state, decision = policy.step(state, p["failure_prob"], th)
                key = (machine, p["mode"] or UNSPECIFIED_MODE)
                if decision == "raise":
                    plan = policy.plan_raise(open_, *key)
                    a = _new_alert(p, now)
                    if plan.action == "insert":
                        open_[key] = int(
                            store.insert_alert(conn, a, actor=SYSTEM_ACTOR, now=now)["id"]
                        )
                        raised += 1
                    else:
                        assert plan.alert_id is not None
                        store.refresh_alert(conn, plan.alert_id, a, actor=SYSTEM_ACTOR, now=now)
                elif decision == "hold" and key in open_:
                    store.refresh_alert(
                        conn, open_[key], _new_alert(p, now), actor=SYSTEM_ACTOR, now=now
                    )
                elif decision == "clear":
                    for other in [k for k in open_ if k[0] == machine]:
                        if _status(conn, open_[other]) != "open":
                            continue  # acknowledged: a technician is on it; it does not clear itself
                        reason = f"cleared: failure probability {p['failure_prob']:.3f} < {th.low}"
                        store.transition(
                            conn,
                            open_.pop(other),
                            "cleared",
                            actor=SYSTEM_ACTOR,
                            reason=reason,
                            now=now,
                        )
            new_states.append((machine, state.consecutive_high, state.active, rows[-1]["ts"]))
        store.flag_predictions(conn, flags)
        store.save_states(conn, new_states, now=now)
        store.escalate_due(conn, now=now, after_s=settings.api.escalate_after_s)
    return raised


def close_overtaken(conn: psycopg.Connection, now: datetime) -> int:
    """Close active alerts the machine has overtaken; returns how many.

    A failure after the alert's data closes it as ``failed`` with its outcome: ``caught_in_time``
    when the alert came at least the machine type's planned-work hours before the failure (the
    warning was early enough, the work was not done), else ``too_late``. Maintenance started
    after it (scheduled, or ordered for another alert) clears it.
    """
    closed = 0
    for a in store.alerts_overtaken(conn):
        if a["event"] == "failure":
            lead_h = (a["event_ts"] - a["created_at"]).total_seconds() / 3600.0
            outcome = "caught_in_time" if lead_h >= float(a["planned_hours"]) else "too_late"
            detail = {
                "outcome": outcome,
                "lead_h": round(lead_h, 3),
                "failure_ts": a["event_ts"].isoformat(),
                "failure_mode": a["failure_mode"],
            }
            to, reason = "failed", f"failed ({outcome.replace('_', ' ')}): {a['failure_mode']}"
        else:
            detail = {"maintenance_ts": a["event_ts"].isoformat(), "event": a["event_detail"]}
            to, reason = "cleared", "cleared: the machine was maintained"
        store.transition(
            conn, a["id"], to, actor=SYSTEM_ACTOR, reason=reason, now=now, detail=detail
        )
        closed += 1
    return closed


def _status(conn: psycopg.Connection, alert_id: int) -> str | None:
    row = conn.execute("select status from alerts where id = %s", (alert_id,)).fetchone()
    return None if row is None else str(row[0])


def update_cost_thresholds(
    conn: psycopg.Connection, settings: Settings, now: datetime
) -> dict[str, Any]:
    """Per machine type, store the threshold that maximises expected savings on labelled history.

    Types with too little history, or where no threshold saves money, keep the fixed thresholds.
    The low threshold keeps the configured low/high ratio.
    """
    m = settings.models
    ratio = m.alert_low / m.alert_high
    out: dict[str, Any] = {}
    with conn.transaction():
        for t in load_registry(conn).types:
            hist = store.labelled_history(conn, t.id, horizon_h=m.horizon_h)
            choice = policy.cost_threshold(hist, t.costs)
            if len(hist) < MIN_THRESHOLD_SAMPLES or math.isinf(choice.threshold):
                out[t.id] = {"source": "fixed", "high": m.alert_high, "samples": len(hist)}
                continue
            store.save_threshold(
                conn,
                t.id,
                high=choice.threshold,
                low=choice.threshold * ratio,
                source="cost",
                expected_savings=choice.expected_savings,
                samples=len(hist),
                now=now,
            )
            out[t.id] = {
                "source": "cost",
                "high": choice.threshold,
                "expected_savings": choice.expected_savings,
                "samples": len(hist),
            }
    return out


def run_alerting_loop(
    settings: Settings,
    url: str,
    *,
    stop: threading.Event,
    interval_s: float = 1.0,
    webhook_client: Any = None,
    health: LoopHealth | None = None,
) -> None:
    """Run :func:`run_alerting_once` (and webhook and notification deliveries) every ``interval_s`` until ``stop`` is set.

    A database outage is logged and retried with backoff; it never ends the loop.
    """
    from forewarn.notify.delivery import notify_tick
    from forewarn.periodic import run_periodic
    from forewarn.webhooks import deliver_pending

    def step(conn: psycopg.Connection) -> int:
        now = now_on(conn, settings.clock)
        raised = run_alerting_once(conn, settings, now)
        if webhook_client is not None:
            deliver_pending(conn, webhook_client)
            # reminders, escalations and digests on the plant clock, then e-mail/Teams/Slack
            notify_tick(conn, settings.notify, webhook_client, now=now)
        return raised

    run_periodic("alerts", url, step, stop=stop, interval_s=interval_s, health=health)

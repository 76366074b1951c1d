"""The alert runner: champion predictions -> hysteresis -> raised, refreshed, cleared, escalated alerts.

Hysteresis state and each machine's position in the prediction stream live in ``alert_state``,
written in the same transaction as the alerts they caused, so a restart neither repeats nor skips.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from time import monotonic
from typing import Any

import psycopg

from forewarn.clock import now_on
from forewarn.health import LoopHealth
from forewarn.partitions import partition_of
from forewarn.settings import Settings
from forewarn.storage import alerts as store
from forewarn.storage.assets import load_registry
from models import policy

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"
UNSPECIFIED_MODE = "unspecified"
MIN_THRESHOLD_SAMPLES = 50
SERVICE = "alerts"
HOUSEKEEPING_S = 5.0  # overtaken alerts without new scores, escalation, reminders and digests


def _new_alert(p: dict[str, Any], now: datetime, version: int | None = None) -> store.NewAlert:
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
        policy_version=version,
        raised_by_ts=p["ts"],
    )


def current_policy(conn: psycopg.Connection, settings: Settings) -> policy.PolicySet:
    """The live policy version, or the settings' policy when none has been promoted."""
    from forewarn.storage.policies import live_policy

    row = live_policy(conn)
    if row is None:
        return policy.settings_policy(settings)
    return policy.PolicySet.from_dict(row["policy"], version=int(row["version"]))


def _hours(ts: datetime | None) -> float:
    return -math.inf if ts is None else ts.timestamp() / 3600.0


def _from_hours(h: float) -> datetime | None:
    return None if math.isinf(h) else datetime.fromtimestamp(h * 3600.0, UTC)


def run_alerting_once(
    conn: psycopg.Connection,
    settings: Settings,
    now: datetime,
    *,
    machines: Sequence[str] | None = None,
    owns: Callable[[str], bool] | None = None,
    escalate: bool = True,
) -> int:
    """Process every new champion prediction and escalate overdue alerts; returns alerts raised.

    ``machines`` limits the pass to those machines, ``owns`` to the machines of this worker's
    partitions (the alert loop). The overtaken alerts of every machine with new predictions are
    closed before its predictions are applied; ``escalate`` also closes those of every machine and
    escalates overdue alerts (the alert loop does that on its own, slower cadence).

    Alerts are raised by :func:`models.policy.scan` under the live policy version (read at the
    start of every pass, so a promotion takes effect from the next pass) -- the same function the
    backtest replays history with.
    """
    m = settings.models
    pols = current_policy(conn, settings)
    raised = 0
    with conn.transaction():
        if escalate:
            close_overtaken(conn, now)
        preds = store.new_champion_predictions(conn, machine_ids=machines)
        by_machine: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for p in preds:
            if owns is None or owns(p["machine_id"]):
                by_machine[p["machine_id"]].append(p)
        machines = list(by_machine)
        if machines and not escalate:
            close_overtaken(conn, now, machines=machines)
        conditions = store.machine_conditions(conn, machines)
        states = store.load_states(conn, machines)
        open_ = store.open_alerts(conn, machines)
        new_states: list[tuple[str, int, bool, datetime, datetime | None]] = []
        flags: list[tuple[str, datetime, str]] = []
        for machine, rows in by_machine.items():
            n, active, quiet = states.get(machine, (0, False, None))
            machine_state, reset_at = conditions.get(machine, ("running", None))
            if reset_at is not None and rows[0]["ts"] < reset_at:
                # failed or worked on since: its risk starts over, as a new life does in the backtest
                n, active, quiet = 0, False, None
            state = policy.HysteresisState(n, active, _hours(quiet))
            pol = pols.for_type(rows[0]["type_id"])
            ok: list[dict[str, Any]] = []
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
                if quality == "ok":
                    ok.append(p)
                elif quality != "flagged":
                    flags.append((machine, p["ts"], quality))
                # low data quality: no alert and no effect on the hysteresis
            decisions, state = policy.scan(
                [_hours(p["ts"]) for p in ok], [p["failure_prob"] for p in ok], pol, state
            )
            for p, code in zip(ok, decisions.tolist(), strict=True):
                decision = policy.DECISIONS[code]
                key = (machine, p["mode"] or UNSPECIFIED_MODE)
                if decision == "raise":
                    if pol.capacity_per_shift is not None:
                        shift = policy.shift_of(_hours(p["ts"]), pol)
                        since = _from_hours(shift * pol.shift_h)
                        until = _from_hours((shift + 1) * pol.shift_h)
                        assert since is not None and until is not None
                        used = store.raised_in_shift(conn, rows[0]["type_id"], since, until)
                        if not policy.within_capacity(used, pol):
                            continue  # over the shift's capacity: not raised (as in the backtest)
                    plan = policy.plan_raise(open_, *key)
                    a = _new_alert(p, now, pols.version)
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
                        conn,
                        open_[key],
                        _new_alert(p, now, pols.version),
                        actor=SYSTEM_ACTOR,
                        now=now,
                    )
                elif decision == "clear":
                    for other in [k for k in open_ if k[0] == machine]:
                        if _status(conn, open_[other]) != "open":
                            continue  # acknowledged: a technician is on it; it does not clear itself
                        reason = f"cleared: failure probability {p['failure_prob']:.3f} < {pol.low}"
                        store.transition(
                            conn,
                            open_.pop(other),
                            "cleared",
                            actor=SYSTEM_ACTOR,
                            reason=reason,
                            now=now,
                        )
            new_states.append(
                (
                    machine,
                    state.consecutive_high,
                    state.active,
                    rows[-1]["ts"],
                    _from_hours(state.quiet_until_h),
                )
            )
        store.flag_predictions(conn, flags)
        store.save_states(conn, new_states, now=now)
        if escalate:
            store.escalate_due(conn, now=now, after_s=settings.api.escalate_after_s)
    return raised


def close_overtaken(
    conn: psycopg.Connection,
    now: datetime,
    *,
    machines: Sequence[str] | None = None,
    owns: Callable[[str], bool] | None = None,
) -> int:
    """Close active alerts the machine has overtaken; returns how many.

    A failure after the alert's data closes it as ``failed`` with its outcome: ``caught_in_time``
    when the alert came at least the machine type's planned-work hours before the failure (the
    warning was early enough, the work was not done), else ``too_late``. Maintenance started
    after it (scheduled, or ordered for another alert) clears it. ``machines`` limits it to those
    machines' alerts, ``owns`` to this worker's partitions (None: every machine).
    """
    closed = 0
    for a in store.alerts_overtaken(conn, machines):
        if owns is not None and not owns(a["machine_id"]):
            continue  # another worker's partition: it closes this one
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
    return store.alert_status(conn, alert_id)


def update_cost_thresholds(
    conn: psycopg.Connection, settings: Settings, now: datetime
) -> dict[str, Any]:
    """Propose a policy version whose per-type ``high`` maximises expected savings per alert.

    The savings of each candidate threshold are counted per raised alert (:func:`scan` over each
    machine's labelled scores), not per score. Types with too little history, or where no
    threshold saves money, keep the live policy's. The proposal is stored, not promoted:
    ``forewarn policy promote VERSION`` makes the engine use it.
    """
    from dataclasses import replace

    from forewarn.storage.policies import save_policy

    live = current_policy(conn, settings)
    types: dict[str, policy.AlertPolicy] = dict(live.types)
    out: dict[str, Any] = {"types": {}}
    with conn.transaction():
        for t in load_registry(conn).types:
            base = live.for_type(t.id)
            hist = [
                policy.Labelled(mid, _hours(ts), p, f)
                for mid, ts, p, f in store.labelled_history(conn, t.id, horizon_h=base.horizon_h)
            ]
            choice = policy.cost_threshold(hist, t.costs, base)
            if len(hist) < MIN_THRESHOLD_SAMPLES or math.isinf(choice.threshold):
                out["types"][t.id] = {"source": "live", "high": base.high, "samples": len(hist)}
                continue
            ratio = base.low / base.high
            types[t.id] = replace(base, high=choice.threshold, low=choice.threshold * ratio)
            out["types"][t.id] = {
                "source": "cost",
                "high": choice.threshold,
                "expected_savings": round(choice.expected_savings, 2),
                "samples": len(hist),
            }
        proposal = policy.PolicySet(default=live.default, types=types)
        out["version"] = save_policy(
            conn,
            proposal.to_dict(),
            source="thresholds",
            figures={"expected_savings_in_sample": out["types"], "computed_at": now.isoformat()},
            note="per-type thresholds maximising expected savings per alert (in sample)",
        )
    out["promote_with"] = f"forewarn policy promote {out['version']}"
    return out


@dataclass
class ChampionWatch:
    """When the loop must look for new champion predictions (they come every scoring interval,
    not every pass): after a notification (migration 075), on a new connection, when this worker
    gained a partition (its last holder may have died before applying them), and every
    ``rescan_s`` (a LISTEN does not survive a transaction-mode pooler)."""

    rescan_s: float = 60.0
    conn: psycopg.Connection | None = None
    notified: bool = True
    fenced: frozenset[int] = frozenset()
    scanned_at: float = -math.inf

    def attach(self, conn: psycopg.Connection) -> None:
        """LISTEN on a new connection, outside a transaction (a LISTEN starts at commit)."""
        if conn is not self.conn:
            store.listen_champion(conn, self._notify)
            self.conn, self.notified = conn, True

    def due(self, fenced: Sequence[int]) -> bool:
        """Whether this pass looks; clears the reasons (call :meth:`failed` if the pass fails)."""
        gained = bool(set(fenced) - self.fenced)
        self.fenced = frozenset(fenced)
        now = monotonic()
        if not (self.notified or gained or now - self.scanned_at >= self.rescan_s):
            return False
        self.notified, self.scanned_at = False, now
        return True

    def failed(self) -> None:
        self.notified = True

    def _notify(self) -> None:
        self.notified = True


def _owner(partitions: Sequence[int], count: int) -> Callable[[str], bool]:
    mine = frozenset(partitions)
    return lambda machine: partition_of(machine, count) in mine


def run_alerting_loop(
    settings: Settings,
    url: str,
    *,
    stop: threading.Event,
    interval_s: float = 1.0,
    webhook_client: Any = None,
    health: LoopHealth | None = None,
) -> None:
    """Run the alert passes every ``interval_s`` until ``stop`` is set.

    Champion and streaming alerts, for the partitions this worker holds (`forewarn.scaleout`),
    in one transaction behind their lease fences. A pass does work in proportion to what changed:
    the streaming scores not applied yet, and the champion predictions when some were written
    (:class:`ChampionWatch`). Every ``HOUSEKEEPING_S``, each worker closes the overtaken alerts of
    its machines and the holder of partition 0 escalates overdue alerts and queues reminders,
    escalations and digests; that holder also sends webhooks and notifications every pass. A
    database outage is logged and retried with backoff.
    """
    from forewarn.egress import EgressPolicy
    from forewarn.notify.delivery import deliver_notifications, notify_tick
    from forewarn.periodic import run_periodic
    from forewarn.scaleout import LeaseKeeper
    from forewarn.storage import leases
    from forewarn.webhooks import deliver_pending
    from models.runners.stream_alerting import initial_since, next_since, run_stream_alerting_once

    m = settings.models
    keeper = LeaseKeeper(SERVICE, m.partitions, m.lease_s)
    since: dict[int, datetime] = {}
    watch = ChampionWatch()
    housekept = [-math.inf]  # monotonic time of the last housekeeping
    egress = EgressPolicy.from_settings(settings.webhooks)

    def step(conn: psycopg.Connection) -> int:
        held = keeper.tick(conn)
        if not held:
            since.clear()
            return 0
        watch.attach(conn)
        now = now_on(conn, settings.clock)
        house = monotonic() - housekept[0] >= max(HOUSEKEEPING_S, interval_s)
        with conn.transaction():  # one transaction for every held partition, behind their fences
            fenced = leases.fence_many(conn, SERVICE, keeper.worker, held)
            for p in set(since) - set(fenced):
                since.pop(p)
            owns = None if len(fenced) == m.partitions else _owner(fenced, m.partitions)
            champion = watch.due(fenced)
            try:
                raised = 0
                if champion:
                    raised = run_alerting_once(conn, settings, now, owns=owns, escalate=False)
                start = min((since.get(p) or initial_since(now) for p in fenced), default=now)
                n, newest = run_stream_alerting_once(conn, settings, now, start, owns=owns)
                raised += n
                if house and fenced:
                    close_overtaken(conn, now, owns=owns)
                    if 0 in fenced:
                        store.escalate_due(conn, now=now, after_s=settings.api.escalate_after_s)
            except BaseException:
                if champion:
                    watch.failed()
                raise
        if house:
            housekept[0] = monotonic()
        for p in fenced:
            since[p] = next_since(since.get(p) or start, newest)
        if 0 in held and webhook_client is not None:
            deliver_pending(conn, webhook_client, policy=egress)
            if house:  # reminders, escalations and digests on the plant clock, then delivery
                notify_tick(conn, settings.notify, webhook_client, now=now, policy=egress)
            else:
                deliver_notifications(conn, settings.notify, webhook_client, policy=egress)
        return raised

    try:
        run_periodic("alerts", url, step, stop=stop, interval_s=interval_s, health=health)
    finally:
        keeper.leave_url(url)

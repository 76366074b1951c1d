"""The one way to act on an alert: acknowledge, resolve (with the maintenance done) or dismiss.

The API, the dashboard, the CLI and the simulated crew all call this module, so an action does the
same thing whichever surface it came from::

    act_on_alert(conn, alert_id, AlertAction("resolve", actor="ana", maintenance="repair"), ...)
      one transaction:  validate -> alert transition (audited, change cursor, webhook outbox)
                        -> maintenance event (resolve) -> in-transaction hooks
      after commit:     publish the maintenance order to the plant (resolve)

:func:`apply_action` is the transactional part, for a caller that must add its own writes to the
same transaction (the API stores its idempotency record there); it then calls
:func:`publish_order` after its commit. Every time is plant time (:mod:`forewarn.clock`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from psycopg import Connection

from forewarn.clock import ClockMode, now_on
from forewarn.contract import MAINTENANCE_KINDS
from forewarn.errors import Conflict
from forewarn.orders import Publish, command_payload, command_topic
from forewarn.storage import alerts as store

log = logging.getLogger(__name__)

Verb = Literal["acknowledge", "resolve", "dismiss"]
STATUS_OF_VERB: dict[str, str] = {
    "acknowledge": "acknowledged",
    "resolve": "resolved",
    "dismiss": "dismissed",
}


@dataclass(frozen=True, slots=True)
class AlertAction:
    """What a person (or a maintenance system) does to an alert."""

    verb: Verb
    actor: str
    reason: str = ""
    maintenance: str | None = None  # resolve: the maintenance done (inspection|preventive|repair)
    note: str = ""
    expected_version: int | None = None
    via: str = "api"  # api | dashboard | cli | crew: recorded in the transition's detail
    detail: Mapping[str, Any] = field(default_factory=dict)  # more audit detail (e.g. confirmed)


@dataclass(slots=True)
class ActionResult:
    alert: dict[str, Any]
    changed: bool  # False: the alert already had that status (an idempotent repeat)
    order: tuple[str, bytes] | None = None  # (topic, payload) to publish after commit


# Writes other features add to the action's transaction (e.g. notifications queued for an
# acknowledgement): called as hook(conn, action, result) after the transition, before commit.
Hook = Callable[[Connection, AlertAction, ActionResult], None]
HOOKS: list[Hook] = []


def validate(action: AlertAction) -> None:
    """Raise Conflict for an action that cannot be applied whatever the alert's state."""
    if action.verb not in STATUS_OF_VERB:
        raise Conflict(f"unknown action {action.verb!r}")
    if action.verb == "resolve" and action.maintenance not in MAINTENANCE_KINDS:
        raise Conflict(f"resolve needs the maintenance done: one of {', '.join(MAINTENANCE_KINDS)}")
    if action.verb == "dismiss" and not action.reason.strip():
        raise Conflict("dismiss needs a reason (why is this a false alarm?)")
    if not action.actor.strip():
        raise Conflict("an action needs an actor")


def apply_action(
    conn: Connection, alert_id: int, action: AlertAction, *, now: datetime, topic_root: str
) -> ActionResult:
    """The transactional part: validate, transition, maintenance event, hooks (caller commits)."""
    validate(action)
    detail: dict[str, Any] = {"via": action.via, **action.detail}
    if action.verb == "resolve":
        detail.update(action=action.maintenance, note=action.note)
    reason = action.reason or (action.note or action.maintenance or "") or action.verb
    alert, changed = store.transition(
        conn,
        alert_id,
        STATUS_OF_VERB[action.verb],
        actor=action.actor,
        reason=reason,
        now=now,
        detail=detail,
        expected_version=action.expected_version,
    )
    result = ActionResult(alert, changed)
    if changed and action.verb == "resolve":
        assert action.maintenance is not None
        store.insert_maintenance_event(
            conn,
            alert,
            kind=action.maintenance,
            actor=action.actor,
            note=action.note,
            now=now,
            source=action.via,
        )
        site = store.machine_site(conn, alert["machine_id"])
        result.order = (
            command_topic(site, alert["machine_id"], topic_root),
            command_payload(action.maintenance, int(alert["id"])),
        )
    for hook in HOOKS:
        hook(conn, action, result)
    return result


def publish_order(result: ActionResult, publish: Publish | None) -> bool:
    """Send the maintenance order of a committed resolve; False when there was none to send.

    The resolution is stored whatever happens here: a broker error is logged, never raised.
    """
    if result.order is None or publish is None:
        return False
    try:
        publish(*result.order)
    except Exception:  # noqa: BLE001 - the resolution is committed; the broker must not undo it
        log.exception("could not publish the maintenance order for alert %s", result.alert["id"])
        return False
    log.info("maintenance order sent: %s %s", result.order[0], result.order[1].decode())
    return True


def act_on_alert(
    conn: Connection,
    alert_id: int,
    action: AlertAction,
    *,
    topic_root: str,
    publish: Publish | None,
    clock: ClockMode = "plant",
    now: datetime | None = None,
) -> ActionResult:
    """Apply ``action`` in one transaction at plant time, then publish its maintenance order."""
    with conn.transaction():
        result = apply_action(
            conn, alert_id, action, now=now or now_on(conn, clock), topic_root=topic_root
        )
    publish_order(result, publish)
    return result

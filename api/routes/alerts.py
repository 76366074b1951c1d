"""Alerts: list and filter, poll changes by cursor, acknowledge, resolve, dismiss."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import Caller, Conn, Now, Pool, PublishDep, ReadPool, SettingsDep
from api.schemas import (
    AckRequest,
    Alert,
    AlertChanges,
    AlertDetail,
    AlertPage,
    DismissRequest,
    Problem,
    ResolveRequest,
    SeverityName,
    Status,
)
from api.timeparams import TimeParam, check_time
from forewarn.actions import AlertAction, apply_action, publish_order
from forewarn.errors import NotFound
from forewarn.storage import alerts as store
from forewarn.storage import idempotency

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/alerts", tags=["alerts"])
AlertId = Annotated[int, Path(ge=1, le=2**62)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Replaying a request with the same key returns the first response.",
    ),
]
CHANGE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem},
    409: {"model": Problem, "description": "Version mismatch or transition not allowed."},
    422: {"model": Problem},
}


@router.get("", response_model=AlertPage)
def list_alerts(
    conn: Conn,
    status: Annotated[list[Status] | None, Query()] = None,
    severity: Annotated[list[SeverityName] | None, Query()] = None,
    machine_id: Annotated[str | None, Query(max_length=200)] = None,
    mode: Annotated[str | None, Query(max_length=200)] = None,
    site_id: Annotated[str | None, Query(max_length=200)] = None,
    since: TimeParam = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertPage:
    """Alerts newest first, filtered; page with before_id."""
    rows = store.list_alerts(
        conn,
        status=status or (),
        severity=severity or (),
        machine_id=machine_id,
        mode=mode,
        site_id=site_id,
        since=check_time(since, "since"),
        before_id=before_id,
        limit=limit,
    )
    nxt = rows[-1]["id"] if len(rows) == limit else None
    return AlertPage(alerts=[Alert(**r) for r in rows], next_before_id=nxt)


@router.get("/changes", response_model=AlertChanges)
async def alert_changes(
    pool: Pool,
    read_pool: ReadPool,
    cursor: Annotated[
        int, Query(ge=0, le=2**62, description="next_cursor of the last poll; 0 first.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Alerts created or changed after the cursor, in commit order: no gap, no repeat.

    An alert changed several times since the cursor appears once, in its latest state.
    """

    if read_pool is not None:
        async with read_pool.connection() as aconn:
            body = await store.alert_changes_json_async(aconn, cursor, limit)
        return Response(body, media_type="application/json")

    def query() -> str:
        with pool.connection() as conn:
            return store.alert_changes_json(conn, cursor, limit)

    return Response(await run_in_threadpool(query), media_type="application/json")


@router.get("/{alert_id}", response_model=AlertDetail, responses={404: {"model": Problem}})
def get_alert(conn: Conn, alert_id: AlertId) -> AlertDetail:
    """One alert with every transition (actor, time, reason)."""
    row = store.get_alert(conn, alert_id)
    if row is None:
        raise NotFound(f"alert {alert_id} does not exist")
    return AlertDetail(**row)


def _request_hash(alert_id: int, op: str, body: BaseModel) -> str:
    text = json.dumps([alert_id, op, body.model_dump(mode="json")], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _change(
    conn: Any,
    caller: Any,
    now: Any,
    settings: Any,
    publish: Any,
    alert_id: int,
    op: str,
    action: AlertAction,
    body: AckRequest | ResolveRequest | DismissRequest,
    idem: str | None,
) -> JSONResponse | Alert:
    """Apply an action (forewarn.actions) in one transaction with the idempotency record, then
    publish its maintenance order; a reused key replays the stored response."""
    rhash = _request_hash(alert_id, op, body)
    with conn.transaction():
        if idem is not None:
            idempotency.lock_key(conn, caller.id, idem)
            stored = idempotency.stored_response(conn, caller.id, idem)
            if stored is not None:
                if stored.request_hash != rhash:
                    raise HTTPException(422, "Idempotency-Key was used for a different request")
                return JSONResponse(stored.response, status_code=stored.status_code)
        result = apply_action(conn, alert_id, action, now=now, topic_root=settings.mqtt.topic_root)
        out = Alert(**result.alert)
        if idem is not None:
            idempotency.store_response(conn, caller.id, idem, rhash, out.model_dump(mode="json"))
    conn.commit()  # the order goes out only once the resolution is durable
    publish_order(result, publish)
    return out


@router.post("/{alert_id}/acknowledge", response_model=Alert, responses=CHANGE_ERRORS)
def acknowledge(
    conn: Conn,
    caller: Caller,
    now: Now,
    settings: SettingsDep,
    publish: PublishDep,
    alert_id: AlertId,
    body: AckRequest,
    idem: IdempotencyKey = None,
) -> JSONResponse | Alert:
    """Acknowledge an open alert (idempotent: acknowledging twice changes nothing)."""
    action = AlertAction(
        "acknowledge", caller.name, reason=body.reason, expected_version=body.expected_version
    )
    return _change(conn, caller, now, settings, publish, alert_id, "ack", action, body, idem)


@router.post("/{alert_id}/resolve", response_model=Alert, responses=CHANGE_ERRORS)
def resolve(
    conn: Conn,
    caller: Caller,
    now: Now,
    settings: SettingsDep,
    publish: PublishDep,
    alert_id: AlertId,
    body: ResolveRequest,
    idem: IdempotencyKey = None,
) -> JSONResponse | Alert:
    """Resolve with the maintenance done: stores a maintenance event and sends a maintenance order."""
    action = AlertAction(
        "resolve",
        caller.name,
        reason=body.note or body.action,
        maintenance=body.action,
        note=body.note,
        expected_version=body.expected_version,
    )
    return _change(conn, caller, now, settings, publish, alert_id, "resolve", action, body, idem)


@router.post("/{alert_id}/dismiss", response_model=Alert, responses=CHANGE_ERRORS)
def dismiss(
    conn: Conn,
    caller: Caller,
    now: Now,
    settings: SettingsDep,
    publish: PublishDep,
    alert_id: AlertId,
    body: DismissRequest,
    idem: IdempotencyKey = None,
) -> JSONResponse | Alert:
    """Dismiss as a false alarm, with a reason."""
    action = AlertAction(
        "dismiss", caller.name, reason=body.reason, expected_version=body.expected_version
    )
    return _change(conn, caller, now, settings, publish, alert_id, "dismiss", action, body, idem)

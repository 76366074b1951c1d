"""Notification channels, routing rules, mute windows and the delivery log (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from api.deps import Caller, Conn
from api.schemas import Problem
from api.schemas_people import (
    Channel,
    ChannelCreate,
    Mute,
    MuteCreate,
    Notification,
    Rule,
    RuleCreate,
)
from forewarn.egress import EgressPolicy, check_url
from forewarn.errors import NotFound
from forewarn.storage import notifications as store

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])
Id = Annotated[int, Path(ge=1, le=2**62)]
ERRORS: dict[int | str, dict[str, object]] = {404: {"model": Problem}, 409: {"model": Problem}}


def _unprocessable(exc: ValueError) -> HTTPException:
    return HTTPException(422, str(exc))


@router.get("/channels", response_model=list[Channel])
def list_channels(conn: Conn) -> list[Channel]:
    return [Channel(**c) for c in store.list_channels(conn)]


@router.post("/channels", response_model=Channel, status_code=201, responses=ERRORS)
def create_channel(request: Request, conn: Conn, caller: Caller, body: ChannelCreate) -> Channel:
    """An e-mail address, a Teams Workflows or Slack incoming-webhook URL, or a signed webhook.

    URLs follow the webhooks' egress policy (public https destinations unless allowed)."""
    if body.kind != "email":
        check_url(body.target, EgressPolicy.from_settings(request.app.state.settings.webhooks))
    try:
        row = store.create_channel(conn, actor=caller.name, **body.model_dump())
    except ValueError as exc:
        raise _unprocessable(exc) from None
    return Channel(**row)


@router.delete("/channels/{channel_id}", status_code=204, responses=ERRORS)
def delete_channel(conn: Conn, channel_id: Id) -> Response:
    """Stop sending to a channel (its log is kept)."""
    if not store.set_active(conn, "notification_channels", channel_id, False):
        raise NotFound(f"no channel {channel_id}")
    return Response(status_code=204)


@router.get("/rules", response_model=list[Rule])
def list_rules(conn: Conn) -> list[Rule]:
    return [Rule(**r) for r in store.list_rules(conn)]


@router.post("/rules", response_model=Rule, status_code=201, responses=ERRORS)
def create_rule(conn: Conn, caller: Caller, body: RuleCreate) -> Rule:
    """Route alert events matching every given filter to a channel, with reminders and escalation."""
    fields = body.model_dump()
    try:
        row = store.create_rule(
            conn, name=fields.pop("name"), channel_id=fields.pop("channel_id"), actor=caller.name,
            **fields,
        )  # fmt: skip
    except ValueError as exc:
        raise _unprocessable(exc) from None
    return Rule(**row)


@router.delete("/rules/{rule_id}", status_code=204, responses=ERRORS)
def delete_rule(conn: Conn, rule_id: Id) -> Response:
    if not store.set_active(conn, "notification_rules", rule_id, False):
        raise NotFound(f"no rule {rule_id}")
    return Response(status_code=204)


@router.get("/mutes", response_model=list[Mute])
def list_mutes(conn: Conn) -> list[Mute]:
    return [Mute(**m) for m in store.list_mutes(conn)]


@router.post("/mutes", response_model=Mute, status_code=201, responses=ERRORS)
def create_mute(conn: Conn, caller: Caller, body: MuteCreate) -> Mute:
    """A maintenance window: notifications (not alerts) for the machine, line or site are muted."""
    try:
        row = store.create_mute(conn, actor=caller.name, **body.model_dump())
    except ValueError as exc:
        raise _unprocessable(exc) from None
    return Mute(**row)


@router.delete("/mutes/{mute_id}", status_code=204, responses=ERRORS)
def delete_mute(conn: Conn, mute_id: Id) -> Response:
    if not store.delete_mute(conn, mute_id):
        raise NotFound(f"no mute window {mute_id}")
    return Response(status_code=204)


@router.get("", response_model=list[Notification])
def delivery_log(
    conn: Conn,
    alert_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    channel_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Notification]:
    """Recent notifications, newest first, with status and every delivery attempt."""
    rows = store.delivery_log(conn, alert_id=alert_id, channel_id=channel_id, limit=limit)
    return [Notification(**n) for n in rows]

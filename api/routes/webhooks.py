"""Webhook subscriptions (admins): create with a secret, list, deactivate, inspect deliveries."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from api.deps import Caller, Conn
from api.schemas import Problem, Webhook, WebhookCreate, WebhookCreated, WebhookDelivery
from forewarn.egress import EgressPolicy, check_url, redact
from forewarn.errors import NotFound
from forewarn.storage import webhooks as store

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
WebhookId = Annotated[int, Path(ge=1, le=2**62)]


@router.get("", response_model=list[Webhook])
def list_webhooks(conn: Conn) -> list[Webhook]:
    """Every subscription; secrets are never shown again and URLs only as ``scheme://host/…``."""
    return [Webhook(**(r | {"url": redact(r["url"])})) for r in store.list_webhooks(conn)]


@router.post("", response_model=WebhookCreated, status_code=201)
def create_webhook(
    conn: Conn, caller: Caller, body: WebhookCreate, request: Request
) -> WebhookCreated:
    """Subscribe a URL to alert events; deliveries are signed with the returned secret."""
    # https only (unless allowed), no credentials, no internal address: forewarn/egress.py
    check_url(str(body.url), EgressPolicy.from_settings(request.app.state.settings.webhooks))
    secret = body.secret or secrets.token_urlsafe(32)
    row = store.create_webhook(
        conn, url=str(body.url), secret=secret, events=list(body.events), actor=caller.name
    )
    return WebhookCreated(**row, secret=secret)


@router.delete("/{webhook_id}", status_code=204, responses={404: {"model": Problem}})
def delete_webhook(conn: Conn, webhook_id: WebhookId) -> Response:
    """Stop deliveries to a subscription (its delivery log is kept)."""
    if not store.deactivate_webhook(conn, webhook_id):
        raise NotFound(f"no active webhook {webhook_id}")
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=list[WebhookDelivery])
def list_deliveries(
    conn: Conn, webhook_id: WebhookId, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[WebhookDelivery]:
    """Recent deliveries with every attempt (status code, error, duration)."""
    return [WebhookDelivery(**r) for r in store.deliveries(conn, webhook_id, limit)]

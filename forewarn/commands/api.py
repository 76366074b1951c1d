"""`forewarn api` (HTTP API), `forewarn keys ...`, `forewarn alerts ...`."""

from __future__ import annotations

import json
import signal
import threading
from typing import Annotated

import typer

from forewarn.clock import now_on, wall_now

keys_app = typer.Typer(no_args_is_help=True, help="API keys (stored hashed, shown once).")
alerts_app = typer.Typer(
    no_args_is_help=True, help="The alert engine; act on an alert (acknowledge, resolve, dismiss)."
)
Role = Annotated[str, typer.Option("--role", help="viewer, operator, maintenance or admin.")]


def api(
    host: Annotated[str | None, typer.Option(help="Override FOREWARN_API__HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Override FOREWARN_API__PORT.")] = None,
) -> None:
    """Serve the HTTP API (uvicorn); starts the embedded PostgreSQL when no URL is set."""
    import uvicorn

    from api.app import create_app
    from forewarn.cli import _settings
    from forewarn.orders import mqtt_publisher
    from forewarn.storage.db import open_pool, prepared_database

    settings = _settings()
    with prepared_database(settings) as url, open_pool(url, settings, name="forewarn-api") as pool:
        publish, close = mqtt_publisher(settings) if settings.mqtt.url else (None, None)
        try:
            app = create_app(settings, pool=pool, publish=publish)
            uvicorn.run(
                app,
                host=host or settings.api.host,
                port=settings.api.port if port is None else port,
                log_level=settings.log_level.lower(),
                access_log=False,
            )
        finally:
            if close is not None:
                close()


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="A unique name for the key.")], role: Role
) -> None:
    """Create an API key and print it once (only its SHA-256 is stored)."""
    from forewarn.cli import _settings
    from forewarn.storage.db import connect, prepared_database
    from forewarn.storage.keys import ROLES, audit, create_key

    if role not in ROLES:
        raise typer.BadParameter(f"must be one of {', '.join(ROLES)}", param_hint="--role")
    settings = _settings()
    with prepared_database(settings) as url, connect(url) as conn:
        key = create_key(conn, name, role)
        audit(conn, "cli", "key.create", name)
    typer.echo(key)


@keys_app.command("list")
def keys_list() -> None:
    """List keys by name, role and prefix."""
    from forewarn.cli import _settings
    from forewarn.storage.db import connect, prepared_database
    from forewarn.storage.keys import list_keys

    with prepared_database(_settings()) as url, connect(url) as conn:
        for k in list_keys(conn):
            typer.echo(json.dumps(k, default=str))


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="Name of the key.")]) -> None:
    """Revoke a key by name."""
    from forewarn.cli import _settings
    from forewarn.errors import NotFound
    from forewarn.storage.db import connect, prepared_database
    from forewarn.storage.keys import audit, revoke_key

    with prepared_database(_settings()) as url, connect(url) as conn:
        if not revoke_key(conn, name, now=wall_now()):
            raise NotFound(f"no active key named {name!r}")
        audit(conn, "cli", "key.revoke", name)


@alerts_app.command("run")
def alerts_run(
    interval_s: Annotated[float, typer.Option("--interval", help="Seconds between passes.")] = 1.0,
    once: Annotated[bool, typer.Option(help="One pass, then exit.")] = False,
    metrics_port: Annotated[
        int, typer.Option(help="Serve /metrics, /healthz, /readyz here (0 = off).")
    ] = 0,
) -> None:
    """Raise, refresh, clear and escalate alerts from champion predictions; send webhooks."""
    import httpx

    from forewarn.cli import _settings
    from forewarn.egress import EgressPolicy
    from forewarn.notify.delivery import notify_tick
    from forewarn.storage.db import connect, prepared_database
    from forewarn.webhooks import deliver_pending
    from models.runners.alerting import run_alerting_loop, run_alerting_once

    settings = _settings()
    with prepared_database(settings) as url, httpx.Client(timeout=5.0) as client:
        if once:
            with connect(url, autocommit=True) as conn:
                now = now_on(conn, settings.clock)
                raised = run_alerting_once(conn, settings, now)
                delivered, failed = deliver_pending(
                    conn, client, policy=EgressPolicy.from_settings(settings.webhooks)
                )
                notified = notify_tick(
                    conn,
                    settings.notify,
                    client,
                    now=now,
                    policy=EgressPolicy.from_settings(settings.webhooks),
                )
            out = {"raised": raised, "webhooks_delivered": delivered, "webhooks_failed": failed}
            typer.echo(json.dumps(out | {f"notifications_{k}": v for k, v in notified.items()}))
            return
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        from forewarn.health import LoopHealth

        health = LoopHealth("alerts", max_age_s=max(30.0, 10 * interval_s))
        server = health.serve(metrics_port, settings.metrics_host)
        run_alerting_loop(
            settings, url, stop=stop, interval_s=interval_s, webhook_client=client, health=health
        )
        if server is not None:
            server.shutdown()


@alerts_app.command("thresholds")
def alerts_thresholds() -> None:
    """Per machine type, store the cost-optimal threshold backtested on labelled history."""
    from forewarn.cli import _settings
    from forewarn.storage.db import connect, prepared_database
    from models.runners.alerting import update_cost_thresholds

    settings = _settings()
    with prepared_database(settings) as url, connect(url) as conn:
        now = now_on(conn, settings.clock)
        typer.echo(json.dumps(update_cost_thresholds(conn, settings, now), indent=2))


def register(app: typer.Typer) -> None:
    """Add `api`, `keys` and `alerts` to the CLI."""
    app.command("api")(api)
    app.add_typer(keys_app, name="keys")
    app.add_typer(alerts_app, name="alerts")


def _act(alert_id: int, verb: str, actor: str, **kw: str) -> None:
    """Act on an alert from the command line through the one action function, then print it."""
    from forewarn.actions import AlertAction, act_on_alert
    from forewarn.cli import _settings
    from forewarn.orders import mqtt_publisher
    from forewarn.storage.alerts import jsonable
    from forewarn.storage.db import connect, prepared_database

    settings = _settings()
    with prepared_database(settings) as url, connect(url) as conn:
        publish, close = (
            mqtt_publisher(settings, name="cli-orders") if settings.mqtt.url else (None, None)
        )
        try:
            action = AlertAction(verb, actor, via="cli", **kw)  # type: ignore[arg-type]
            result = act_on_alert(
                conn,
                alert_id,
                action,
                topic_root=settings.mqtt.topic_root,
                publish=publish,
                clock=settings.clock,
            )
        finally:
            if close is not None:
                close()
    typer.echo(json.dumps(jsonable(result.alert), default=str))


Actor = Annotated[str, typer.Option("--actor", help="Who acts (recorded in the audit trail).")]


@alerts_app.command("ack")
def alerts_ack(
    alert_id: Annotated[int, typer.Argument(min=1)],
    actor: Actor = "cli",
    reason: Annotated[str, typer.Option(help="Note.")] = "",
) -> None:
    """Acknowledge an open alert."""
    _act(alert_id, "acknowledge", actor, reason=reason)


@alerts_app.command("resolve")
def alerts_resolve(
    alert_id: Annotated[int, typer.Argument(min=1)],
    action: Annotated[str, typer.Option("--action", help="inspection, preventive or repair.")],
    actor: Actor = "cli",
    note: Annotated[str, typer.Option(help="What was done.")] = "",
) -> None:
    """Resolve an alert with the maintenance done; the plant receives the maintenance order."""
    _act(alert_id, "resolve", actor, maintenance=action, note=note, reason=note or action)


@alerts_app.command("dismiss")
def alerts_dismiss(
    alert_id: Annotated[int, typer.Argument(min=1)],
    reason: Annotated[str, typer.Option("--reason", help="Why this is a false alarm.")],
    actor: Actor = "cli",
) -> None:
    """Dismiss an alert as a false alarm."""
    _act(alert_id, "dismiss", actor, reason=reason)

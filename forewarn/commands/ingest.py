"""`forewarn ingest` (the MQTT -> PostgreSQL worker)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from forewarn.settings import Settings


@contextmanager
def broker_url(settings: Settings) -> Iterator[str]:
    """The configured broker URL, or a local broker started for the duration of the block."""
    if settings.mqtt.url is not None:
        yield settings.mqtt.url
        return
    from forewarn.broker import local_broker

    with local_broker(settings.state_dir) as url:
        yield url


def ingest(
    client_id: Annotated[
        str | None,
        typer.Option(help="Override FOREWARN_MQTT__CLIENT_ID (one per worker in a shared group)."),
    ] = None,
    shared_group: Annotated[
        str | None, typer.Option(help="Override FOREWARN_INGEST__SHARED_GROUP.")
    ] = None,
) -> None:
    """Run the ingest worker until SIGTERM/SIGINT, then drain (flush, commit, ack, disconnect)."""
    from forewarn.cli import _settings
    from forewarn.storage.db import prepared_database
    from ingest import run_ingest

    settings = _settings()
    if shared_group is not None:
        settings.ingest.shared_group = shared_group
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with prepared_database(settings) as db_url, broker_url(settings) as mqtt_url:
        result = run_ingest(settings, db_url, mqtt_url, stop, client_id=client_id)
    if not result.drained:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)

"""`forewarn ingest` (the MQTT -> PostgreSQL worker) and `forewarn bench ingest`."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from forewarn.commands.bench import bench_app
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


def bench_ingest(
    messages: Annotated[
        int, typer.Option("--messages", "-n", min=1000, help="Messages to publish.")
    ] = 100_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    backlog: Annotated[
        int, typer.Option(min=100, help="Messages queued at the broker per timed drain.")
    ] = 10_000,
) -> None:
    """Bare paho vs naive per-message INSERT vs the ingest pipeline, on one pre-generated set."""
    from forewarn.cli import _settings
    from forewarn.storage.db import database_url
    from tools.bench.ingest import run_bench

    settings = _settings()
    with database_url(settings) as db_url, broker_url(settings) as mqtt_url:
        result = run_bench(settings, db_url, mqtt_url, messages, backlog=backlog)
    _print(result, as_json)


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Ingest benchmark, {result['messages']} messages")
    table.add_column("pass")
    table.add_column("msg/s", justify="right")
    table.add_column("vs pipeline", justify="right")
    pipe = result["pipeline_msgs_per_s"]
    for name in ("bare", "naive", "pipeline"):
        rate = result[f"{name}_msgs_per_s"]
        table.add_row(name, f"{rate:,.0f}", f"{pipe / rate:.2f}x")
    Console().print(table)
    for key in ("stored", "lost", "duplicates", "pipeline_readings_per_s", "ratio_vs_bare",
                "ratio_vs_naive", "p99_lag_ms"):  # fmt: skip
        typer.echo(f"{key}: {result[key]}")
    typer.echo(result["note"])


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    bench_app.command("ingest")(bench_ingest)

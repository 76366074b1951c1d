"""`forewarn maintain` (roll-up refresh + retention, once or periodically) and `forewarn bench timescale`."""

from __future__ import annotations

import json
import threading
from typing import Annotated

import typer

from forewarn.commands.bench import bench_app

DEFAULT_TIMESCALE_URL = "postgresql://127.0.0.1:5432/test_timescale"


def maintain(
    every: Annotated[
        float | None,
        typer.Option(help="Repeat every this many seconds until stopped (default: run once)."),
    ] = None,
) -> None:
    """Refresh the minute/hour roll-ups and drop readings older than FOREWARN_DB__RETENTION_DAYS."""
    import signal
    from datetime import UTC, datetime

    from forewarn.cli import _settings
    from forewarn.storage.db import connect, prepared_database
    from forewarn.storage.maintenance import maintenance_loop, run_maintenance

    settings = _settings()
    with prepared_database(settings) as url:
        if every is None:
            with connect(url) as conn:
                result = run_maintenance(conn, settings, datetime.now(UTC))
            typer.echo(json.dumps(result))
            return
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        maintenance_loop(lambda: connect(url), settings, stop, interval_s=every)


@bench_app.command("timescale")
def bench_timescale_cmd(
    timescale_url: Annotated[
        str,
        typer.Option(
            envvar="FOREWARN_TEST_TIMESCALE_URL", help="A database with the timescaledb extension."
        ),
    ] = DEFAULT_TIMESCALE_URL,
    plain_url: Annotated[
        str | None,
        typer.Option(help="Plain PostgreSQL to compare (default: a scratch twin of the server)."),
    ] = None,
    machines: Annotated[int, typer.Option(help="Machines.")] = 500,
    days: Annotated[float, typer.Option(help="Days of readings per machine.")] = 7.0,
    interval_s: Annotated[float, typer.Option(help="Seconds between readings.")] = 600.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Ingest rate and 7-day roll-up query latency, plain PostgreSQL beside TimescaleDB."""
    from forewarn.cli import _settings
    from tools.bench.timescale import bench_timescale, format_table

    _settings()
    result = bench_timescale(
        timescale_url, plain_url, machines=machines, days=days, interval_s=interval_s
    )
    typer.echo(json.dumps(result) if as_json else format_table(result))


def register(app: typer.Typer) -> None:
    """Add `maintain` to the CLI (`bench timescale` registers on import)."""
    app.command("maintain")(maintain)

"""`forewarn maintain` (roll-up refresh + retention, once or periodically)."""

from __future__ import annotations

import json
import threading
from typing import Annotated

import typer


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


def register(app: typer.Typer) -> None:
    """Add `maintain` to the CLI."""
    app.command("maintain")(maintain)

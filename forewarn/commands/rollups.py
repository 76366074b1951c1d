"""`forewarn maintain` (roll-up refresh + retention, once or periodically)."""

from __future__ import annotations

import json
import threading
from typing import Annotated

import typer

COMPACTION_CHECK_S = 60.0  # how often `maintain --every` looks for closed chunks, at least
COMPACTION_JOIN_S = 5.0  # on stop, wait this long for a compaction; a REINDEX cut short is redone


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
    from forewarn.storage.compaction import compact_closed_chunks, compaction_loop
    from forewarn.storage.db import connect, prepared_database
    from forewarn.storage.maintenance import maintenance_loop, run_maintenance

    settings = _settings()
    with prepared_database(settings) as url:
        if every is None:
            with connect(url) as conn:
                now = datetime.now(UTC)
                result = run_maintenance(conn, settings, now)
                conn.commit()
                result["readings_chunks_compacted"] = compact_closed_chunks(conn, now, limit=1000)
            typer.echo(json.dumps(result))
            return
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        # closed chunks are compacted beside the ticks: one can take minutes at fleet scale
        compactor = threading.Thread(
            target=compaction_loop,
            args=(lambda: connect(url), stop),
            kwargs={"interval_s": max(every, COMPACTION_CHECK_S)},
            name="chunk-compaction",
            daemon=True,
        )
        compactor.start()
        maintenance_loop(lambda: connect(url), settings, stop, interval_s=every)
        compactor.join(timeout=COMPACTION_JOIN_S)


def register(app: typer.Typer) -> None:
    """Add `maintain` to the CLI."""
    app.command("maintain")(maintain)

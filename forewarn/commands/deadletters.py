"""`forewarn deadletters list|replay`: inspect rejected messages and re-ingest fixed ones."""

from __future__ import annotations

import json
from typing import Annotated

import typer

deadletters_app = typer.Typer(help="Inspect dead letters and replay the ones that validate now.")


@deadletters_app.command("list")
def list_(
    reason: Annotated[str | None, typer.Option(help="Only this reason code.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 50,
    pending: Annotated[bool, typer.Option(help="Only those not replayed yet.")] = False,
) -> None:
    """One JSON line per dead letter (payload shown as a short excerpt), then counts by reason."""
    from forewarn.cli import _settings
    from forewarn.storage.db import connect, prepared_database
    from forewarn.storage.dead_letters import count_by_reason, list_dead_letters

    settings = _settings()
    with prepared_database(settings) as url, connect(url) as conn:
        letters = list_dead_letters(conn, reason=reason, limit=limit, include_replayed=not pending)
        counts = count_by_reason(conn)
    for d in letters:
        line = {
            "id": d.id,
            "received_at": d.received_at.isoformat(),
            "reason": d.reason,
            "topic": d.topic,
            "detail": d.detail[:200],
            "size_bytes": d.size_bytes,
            "sha256": d.sha256,
            "replayed_at": d.replayed_at.isoformat() if d.replayed_at else None,
            "excerpt": d.payload[:120].decode("utf-8", "replace"),
        }
        typer.echo(json.dumps(line))
    typer.echo(json.dumps({"pending_by_reason": counts}))


@deadletters_app.command("replay")
def replay(
    reason: Annotated[str | None, typer.Option(help="Only dead letters of this reason.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 100_000,
) -> None:
    """Validate dead letters again (today's registry) and ingest those that pass; idempotent."""
    from forewarn.cli import _settings
    from forewarn.clock import wall_now
    from forewarn.storage.db import connect, prepared_database
    from ingest.replay import replay_dead_letters

    settings = _settings()
    with prepared_database(settings) as url, connect(url, autocommit=True) as conn:
        result = replay_dead_letters(conn, settings, now=wall_now(), reason=reason, limit=limit)
    typer.echo(
        json.dumps(
            {
                "replayed": result.replayed,
                "readings_stored": result.readings,
                "events_stored": result.events,
                "still_rejected": dict(result.still_rejected),
                "incomplete": result.incomplete,
            }
        )
    )


def register(app: typer.Typer) -> None:
    """Add `deadletters` to the CLI."""
    app.add_typer(deadletters_app, name="deadletters")

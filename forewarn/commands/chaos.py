"""`forewarn chaos`: faults injected into a private ingest stack, then the loss counted."""

from __future__ import annotations

from typing import Annotated

import typer


def chaos(
    messages: Annotated[
        int, typer.Option("--messages", "-n", min=100, help="Messages to publish.")
    ] = 3000,
    kills: Annotated[int, typer.Option(min=0, help="SIGKILLs of the ingest process.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the fault points.")] = 1,
    rate: Annotated[
        float | None, typer.Option(help="Publish rate, msg/s (default: the stream lasts ~20 s).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Publish a known set while killing ingest and restarting PostgreSQL and the broker; count loss."""
    from forewarn.cli import _emit, _settings
    from tools.chaos import ChaosOptions, run_chaos

    _settings()
    result = run_chaos(ChaosOptions(messages=messages, kills=kills, seed=seed, rate=rate))
    _emit(result, as_json, f"Chaos run, {messages} messages, {kills} ingest kills")
    if result["lost"] or result["duplicates"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("chaos")(chaos)

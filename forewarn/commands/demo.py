"""`forewarn demo`: the whole plant on embedded defaults with one command."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    machines: Annotated[int, typer.Option(min=4, help="Machines in the simulated plant.")] = 60,
    speed: Annotated[float, typer.Option(help="Simulated seconds per wall second.")] = 3600.0,
    headless: Annotated[
        bool, typer.Option("--headless", help="No dashboard; for tests and CI.")
    ] = False,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many wall seconds (default: Ctrl-C).")
    ] = None,
    reset: Annotated[
        bool, typer.Option("--reset", help="Start over: delete the state directory.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the simulated plant.")] = 1,
    api_port: Annotated[int, typer.Option(help="API port (0 = a free one).")] = 0,
    dashboard_port: Annotated[int, typer.Option(help="Dashboard port (0 = a free one).")] = 0,
    bootstrap_days: Annotated[
        float, typer.Option(min=5.0, help="Days of simulated history the first models learn from.")
    ] = 30.0,
    bootstrap_machines: Annotated[
        int, typer.Option(min=12, help="Machines in that simulated history.")
    ] = 36,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the headless summary as JSON.")
    ] = False,
    crew: Annotated[
        bool,
        typer.Option("--crew", help="A simulated maintenance crew acts on alerts through the API."),
    ] = False,
    credentials: Annotated[
        bool,
        typer.Option(
            "--credentials", help="Print the demo's URLs and admin log-in and API key, then exit."
        ),
    ] = False,
) -> None:
    """Run simulator, ingest, scoring, alerts, API and dashboard; Ctrl-C stops everything."""
    from forewarn.cli import _settings
    from forewarn.demo import DemoOptions, load_access, run_demo

    if credentials:
        access = load_access(_settings().state_dir)
        if not access:
            raise typer.BadParameter("no demo has run in this state directory yet")
        typer.echo(json.dumps(access, indent=2))
        return

    if headless and duration is None:
        raise typer.BadParameter("--headless needs --duration SECONDS", param_hint="--duration")
    opts = DemoOptions(
        machines=machines,
        speed=speed,
        headless=headless,
        duration_s=duration,
        reset=reset,
        seed=seed,
        api_port=api_port,
        dashboard_port=dashboard_port,
        bootstrap_days=bootstrap_days,
        bootstrap_machines=bootstrap_machines,
        crew=crew,
    )
    from forewarn.supervisor import ServiceFailed

    try:
        result = run_demo(_settings(), opts)
    except ServiceFailed as exc:
        typer.echo(f"forewarn demo: {exc}", err=True)
        raise typer.Exit(1) from exc
    if headless:
        typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))
    if result["problems"]:
        for problem in result["problems"]:
            typer.echo(f"forewarn demo: {problem}", err=True)
        raise typer.Exit(1)

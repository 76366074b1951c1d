"""`forewarn bench ...`: every benchmark, registered here and nowhere else.

The implementations live in ``tools/`` (which the product never imports); each command imports its
tool inside its body, so `forewarn --help` stays fast and loads no tool.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

DEFAULT_TIMESCALE_URL = "postgresql://127.0.0.1:5432/test_timescale"

bench_app = typer.Typer(
    no_args_is_help=True, help="Benchmarks on the configured broker and database."
)


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
    from forewarn.commands.ingest import broker_url
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


def bench_api_cmd(
    machines: Annotated[int, typer.Option(help="Machines to seed.")] = 500,
    alerts: Annotated[int, typer.Option(help="Alerts to seed.")] = 20_000,
    requests: Annotated[int, typer.Option(help="Requests per endpoint.")] = 20_000,
    concurrency: Annotated[int, typer.Option(help="Requests in flight.")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Seed a scratch schema, serve the API with uvicorn, and load the polling and machine-list endpoints."""
    from forewarn.cli import _emit, _settings
    from forewarn.storage.db import prepared_database
    from tools.bench.api import bench_api

    settings = _settings()
    with prepared_database(settings) as url:
        result = bench_api(
            url, machines=machines, alerts=alerts, requests=requests, concurrency=concurrency
        )
    _emit(result, as_json, "API benchmark")


def bench_dashboard_cmd(
    machines: Annotated[int, typer.Option(help="Machines to seed.")] = 500,
    days: Annotated[float, typer.Option(help="Days of history to seed.")] = 7.0,
    repeat: Annotated[int, typer.Option(help="Timed loads per page (the median is reported).")] = 3,
    browser: Annotated[
        bool,
        typer.Option(
            "--browser", help="Time each page in Chromium from click until its charts are drawn."
        ),
    ] = False,
    visits: Annotated[
        int, typer.Option(help="--browser: visits per page (round-robin; p95 over the later ones).")
    ] = 40,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Seed a scratch schema with a week of plant data and time each dashboard page: its data load,
    or with --browser what a person waits for in Chromium (first_s, p50_s, p95_s per page)."""
    from forewarn.cli import _emit, _settings
    from forewarn.storage.db import prepared_database

    settings = _settings()
    with prepared_database(settings) as url:
        if browser:
            from tools.bench.dashboard_browser import bench_dashboard_browser

            result = bench_dashboard_browser(url, machines=machines, days=days, visits=visits)
        else:
            from tools.bench.dashboard import bench_dashboard

            result = bench_dashboard(url, machines=machines, days=days, repeat=repeat)
    _emit(result, as_json, "Dashboard pages in Chromium" if browser else "Dashboard page loads")


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


def bench_simulator(
    machines: Annotated[int, typer.Option(min=1)] = 1000,
    sim_hours: Annotated[float, typer.Option("--sim-hours", min=0.1)] = 6.0,
    mqtt_url: Annotated[
        str | None, typer.Option("--mqtt-url", help="Broker URL (default: FOREWARN_MQTT__URL).")
    ] = None,
    no_mqtt: Annotated[
        bool, typer.Option("--no-mqtt", help="Only generation and JSON lines.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Messages per second: generation, --jsonl, and MQTT QoS 0/1 (under a unique topic root)."""
    from contextlib import nullcontext

    from forewarn.broker import local_broker
    from forewarn.logs import setup_logging
    from forewarn.settings import load_settings
    from tools.bench.simulator import bench_simulator as run

    settings = load_settings()
    setup_logging("WARNING")
    url = mqtt_url or settings.mqtt.url
    ctx = nullcontext(url) if url or no_mqtt else local_broker(settings.state_dir)
    with ctx as broker:
        result = run(machines, sim_hours, mqtt_url=None if no_mqtt else broker)
    if as_json:
        typer.echo(json.dumps(result))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Simulator, {machines} machines, {sim_hours:g} simulated hours")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for k, v in result.items():
        table.add_row(k, f"{v:,}" if isinstance(v, int) else str(v))
    Console().print(table)


def bench_import_cmd(
    rows: Annotated[int, typer.Option(min=1000, help="Rows of the wide CSV.")] = 1_000_000,
    machines: Annotated[int, typer.Option(min=1, help="Machines in the file.")] = 100,
    batch_rows: Annotated[
        int | None, typer.Option(help="Rows per batch (default FOREWARN_IMPORTS__BATCH_ROWS).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """History import of a wide CSV into a throwaway schema: rows/s and peak memory."""
    from forewarn.cli import _emit, _settings
    from forewarn.storage.db import prepared_database
    from tools.bench.imports import bench_import

    settings = _settings()
    with prepared_database(settings) as url:
        result = bench_import(
            url,
            rows=rows,
            machines=machines,
            batch_rows=batch_rows or settings.imports.batch_rows,
        )
    _emit(result, as_json, f"History import, {rows:,} rows")


def bench_fleet(
    machines: Annotated[
        str, typer.Option(help="Fleet sizes, comma-separated (e.g. 1000,5000); each runs in turn.")
    ] = "1000",
    hz: Annotated[float, typer.Option(min=0.01, help="Readings per machine per second.")] = 1.0,
    duration: Annotated[float, typer.Option(min=60, help="Seconds of publishing per size.")] = 120,
    faults: Annotated[int, typer.Option(min=0, help="Machines given an abrupt fault.")] = 24,
    publishers: Annotated[
        int | None,
        typer.Option(help="Publisher processes (default: one per 5,000 msg/s, at most 6)."),
    ] = None,
    scorers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="`forewarn score --loop` workers sharing the partitions (default: one per 2,500 msg/s).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The whole pipeline (ingest, roll-ups, scoring, alerts, API) under a live fleet in real time."""
    from pathlib import Path

    from forewarn.cli import _emit, _settings
    from forewarn.commands.ingest import broker_url
    from forewarn.storage.db import database_url
    from tools.bench.fleet import run_fleet

    settings = _settings()
    try:
        sizes = [int(x) for x in machines.split(",") if x.strip()]
    except ValueError as exc:
        raise typer.BadParameter(f"--machines wants integers separated by commas: {exc}") from None
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter("--machines wants at least one positive size")
    m = settings.models
    with database_url(settings) as db_url, broker_url(settings) as mqtt_url:
        result = run_fleet(
            db_url,
            mqtt_url,
            sizes,
            hz=hz,
            duration_s=duration,
            faults=faults,
            publishers=publishers,
            scorers=scorers,
            log_dir=Path(settings.state_dir) / "bench-fleet",
            high=m.alert_high,
            low=m.alert_low,
            k=m.alert_k,
            cadence_s=m.stream_cadence_s,
        )
    if as_json:
        typer.echo(json.dumps(result))
        return
    for f in result["fleets"]:
        _emit({k: v for k, v in f.items() if not isinstance(v, dict | list)}, False,
              f"Fleet of {f['machines']} machines")  # fmt: skip
    typer.echo(f"largest sustained: {result['largest_sustained']}")


def bench_storage(
    machines: Annotated[
        int, typer.Option(min=1, help="Machines of the fleet's mix, 1 Hz each.")
    ] = 200,
    seconds: Annotated[int, typer.Option(min=60, max=86_000, help="Readings per machine.")] = 1800,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Bytes per stored reading (heap, each index), before and after closed chunks are compacted."""
    from forewarn.cli import _emit, _settings
    from forewarn.storage.db import database_url
    from tools.bench.storage import run_storage_bench

    with database_url(_settings()) as db_url:
        result = run_storage_bench(db_url, machines, seconds)
    if as_json:
        typer.echo(json.dumps(result))
        return
    _emit({k: v for k, v in result.items() if not isinstance(v, dict | list)}, False,
          "Storage per reading")  # fmt: skip
    for when in ("before", "after"):
        typer.echo(f"{when}: {json.dumps(result[when])}")


def bench_validate(
    messages: Annotated[
        int, typer.Option("--messages", "-n", min=1000, help="Payloads to validate per round.")
    ] = 100_000,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds of each pass (best kept).")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The contract's validator alone vs ingest's fast path with the contract as fallback."""
    from forewarn.cli import _emit
    from tools.bench.validate import run_validate_bench

    _emit(run_validate_bench(messages, rounds=rounds), as_json, "Validation benchmark")


def register(app: typer.Typer) -> None:
    """Mount the `bench` group with its subcommands."""
    bench_app.command("ingest")(bench_ingest)
    bench_app.command("api")(bench_api_cmd)
    bench_app.command("simulator")(bench_simulator)
    bench_app.command("dashboard")(bench_dashboard_cmd)
    bench_app.command("timescale")(bench_timescale_cmd)
    bench_app.command("import")(bench_import_cmd)
    bench_app.command("validate")(bench_validate)

    bench_app.command("fleet")(bench_fleet)
    bench_app.command("storage")(bench_storage)
    app.add_typer(bench_app, name="bench")

"""`forewarn import readings|events FILE`: a plant's history from historian and CMMS exports."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from psycopg import Connection

    from forewarn.settings import Settings
    from ingest.history_import import ImportSummary

import_app = typer.Typer(
    no_args_is_help=True,
    help="Import history: historian readings and CMMS failure/maintenance logs.",
)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")]
MappingOpt = Annotated[
    Path | None, typer.Option("--mapping", help="TOML mapping file (flags override it).")
]
RejectsOpt = Annotated[
    Path | None,
    typer.Option("--rejects", help="Where rejected rows go (default FILE.rejects.csv)."),
]
TsFormatOpt = Annotated[
    str | None,
    typer.Option("--ts-format", help="strftime format, epoch_s or epoch_ms (default ISO 8601)."),
]
TzOpt = Annotated[
    str | None,
    typer.Option("--timezone", help="IANA zone of timestamps without an offset (default UTC)."),
]


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")


@contextmanager
def _progress(total: int, label: str, quiet: bool) -> Iterator[Callable[[int], None]]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=quiet,
        disable=quiet,
    ) as bar:
        task = bar.add_task(label, total=total or None)
        yield lambda n: bar.advance(task, n)


def _report(out: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(out, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Imported {out['file']}")
    table.add_column("")
    table.add_column("", justify="right")
    for key in (
        "shape",
        "rows",
        "stored",
        "duplicates",
        "rejected",
        "machines",
        "first_ts",
        "last_ts",
        "seconds",
        "rows_per_s",
    ):
        table.add_row(key, str(out.get(key)))
    for reason, n in out["rejected_by_reason"].items():
        table.add_row(f"  rejected: {reason}", str(n))
    console = Console()
    console.print(table)
    if out["rejects_file"]:
        console.print(f"rejected rows and reasons: {out['rejects_file']}")


def _run(
    settings: Settings,
    file: Path,
    as_json: bool,
    run: Callable[[Connection, Callable[[int], None]], ImportSummary],
) -> None:
    """Open the database, show a progress bar over the file's rows, run the import, report."""
    from forewarn.storage.db import connect, prepared_database
    from ingest.import_files import count_rows

    total = count_rows(file) if file.is_file() else 0
    with (
        prepared_database(settings) as url,
        connect(url) as conn,
        _progress(total, f"importing {file.name}", as_json) as advance,
    ):
        summary = run(conn, advance)
    _report(summary.as_dict(), as_json)


def _pairs(items: list[str] | None, flag: str) -> dict[str, str]:
    from forewarn.errors import InputError

    out: dict[str, str] = {}
    for item in items or []:
        col, sep, name = item.partition("=")
        if not sep or not col or not name:
            raise InputError(f"{flag} {item!r}: expected COLUMN=SENSOR")
        out[col] = name
    return out


@import_app.command("readings")
def import_readings_cmd(
    file: Annotated[Path, typer.Argument(help="Historian export: .csv or .parquet.")],
    mapping: MappingOpt = None,
    shape: Annotated[
        str | None, typer.Option(help="wide (a column per sensor), long, or auto.")
    ] = None,
    machine_col: Annotated[str | None, typer.Option(help="Machine id column.")] = None,
    machine_id: Annotated[
        str | None, typer.Option(help="The one machine of a file without a machine column.")
    ] = None,
    ts_col: Annotated[str | None, typer.Option(help="Timestamp column.")] = None,
    ts_format: TsFormatOpt = None,
    timezone: TzOpt = None,
    sensor_col: Annotated[str | None, typer.Option(help="long: sensor name column.")] = None,
    value_col: Annotated[str | None, typer.Option(help="long: value column.")] = None,
    regime_col: Annotated[str | None, typer.Option(help="Operating-regime column.")] = None,
    sensor: Annotated[
        list[str] | None,
        typer.Option("--sensor", help="COLUMN=SENSOR: a file column (or long tag) is this sensor."),
    ] = None,
    ignore: Annotated[
        list[str] | None, typer.Option("--ignore", help="wide: leave this column out.")
    ] = None,
    delimiter: Annotated[str | None, typer.Option(help="CSV field separator.")] = None,
    rejects: RejectsOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Import readings (streamed, one COPY per batch); re-importing stores nothing twice."""
    from forewarn.cli import _settings
    from forewarn.clock import wall_now
    from ingest.history_import import import_readings
    from ingest.import_files import ImportMapping, load_mapping

    overrides: dict[str, Any] = {
        "shape": shape,
        "machine": machine_col,
        "machine_id": machine_id,
        "ts": ts_col,
        "ts_format": ts_format,
        "timezone": timezone,
        "sensor": sensor_col,
        "value": value_col,
        "regime": regime_col,
        "delimiter": delimiter,
    }
    m = load_mapping(mapping, overrides, ImportMapping)
    if sensor:
        m.sensors.update(_pairs(sensor, "--sensor"))
    if ignore:
        m.ignore.extend(ignore)
    settings = _settings()

    def run(conn: Connection, advance: Callable[[int], None]) -> ImportSummary:
        return import_readings(
            conn,
            file,
            m,
            now=wall_now(),
            max_future_s=settings.ingest.max_future_s,
            min_ts=settings.ingest.min_timestamp,
            rejects_path=rejects,
            progress=advance,
            batch_rows=settings.imports.batch_rows,
        )

    _run(settings, file, as_json, run)


@import_app.command("events")
def import_events_cmd(
    file: Annotated[Path, typer.Argument(help="CMMS export: .csv or .parquet.")],
    mapping: MappingOpt = None,
    machine_col: Annotated[str | None, typer.Option(help="Machine id column.")] = None,
    start_col: Annotated[str | None, typer.Option(help="Start time column.")] = None,
    end_col: Annotated[str | None, typer.Option(help="End time column.")] = None,
    kind_col: Annotated[str | None, typer.Option(help="Kind column.")] = None,
    mode_col: Annotated[str | None, typer.Option(help="Failure mode column.")] = None,
    cost_col: Annotated[str | None, typer.Option(help="Cost column.")] = None,
    ts_format: TsFormatOpt = None,
    timezone: TzOpt = None,
    delimiter: Annotated[str | None, typer.Option(help="CSV field separator.")] = None,
    rejects: RejectsOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Import failures and maintenance (machine, start, end, kind, failure mode, cost)."""
    from forewarn.cli import _settings
    from forewarn.clock import wall_now
    from ingest.history_import import import_events, load_event_mapping

    m = load_event_mapping(
        mapping,
        {
            "machine": machine_col,
            "start": start_col,
            "end": end_col,
            "kind": kind_col,
            "failure_mode": mode_col,
            "cost": cost_col,
            "ts_format": ts_format,
            "timezone": timezone,
            "delimiter": delimiter,
        },
    )

    def run(conn: Connection, advance: Callable[[int], None]) -> ImportSummary:
        return import_events(conn, file, m, now=wall_now(), rejects_path=rejects, progress=advance)

    _run(_settings(), file, as_json, run)

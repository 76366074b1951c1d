"""The `forewarn` command. Thin: parse arguments, build dependencies, delegate.

Each command imports its process package inside the command, so `forewarn --help` stays fast and a
broken import in one component cannot break another's command.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from forewarn.errors import ForewarnError
from forewarn.settings import Settings, load_settings

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Forewarn predictive maintenance."
)
config_app = typer.Typer(no_args_is_help=True, help="Configuration.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
contract_app = typer.Typer(no_args_is_help=True, help="The MQTT message contract.")
evaluate_app = typer.Typer(no_args_is_help=True, help="Model quality on public datasets.")
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(contract_app, name="contract")
app.add_typer(evaluate_app, name="evaluate")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _settings() -> Settings:
    from forewarn.logs import setup_logging

    settings = load_settings()
    setup_logging(settings.log_level)
    return settings


def _emit(result: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        typer.echo(json.dumps(result, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("key")
    table.add_column("value", justify="right")
    for k, v in result.items():
        table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    Console().print(table)


@config_app.command("show")
def config_show() -> None:
    """Print the effective configuration, secrets masked."""
    from forewarn.settings import masked

    typer.echo(json.dumps(masked(_settings()), indent=2))


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending migrations (starts the embedded server when no URL is set)."""
    from forewarn.storage.db import connect, database_url
    from forewarn.storage.migrate import applied_migrations, migrate

    settings = _settings()
    with database_url(settings) as url, connect(url) as conn:
        applied = migrate(conn)
        total = len(applied_migrations(conn))
    typer.echo(f"applied {len(applied)} migration(s) {applied}; {total} in the database")


@contract_app.command("schema")
def contract_schema(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to a file instead of stdout.")
    ] = None,
) -> None:
    """Export the message contract as JSON Schema."""
    from forewarn.contract import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


@evaluate_app.command("cmapss")
def evaluate_cmapss(
    data: Annotated[Path, typer.Option(help="Folder with train_/test_/RUL_FD00x files.")],
    subset: Annotated[str, typer.Option(help="FD001..FD004")] = "FD001",
    as_json: JsonFlag = False,
) -> None:
    """Train on a C-MAPSS subset and score its official test set (RMSE, NASA score)."""
    from models.runners.evaluate import run_cmapss

    _settings()
    _emit(run_cmapss(data, subset.upper()), as_json, f"C-MAPSS {subset.upper()}")


@evaluate_app.command("ai4i")
def evaluate_ai4i(
    data: Annotated[Path, typer.Option(help="Path of ai4i2020.csv.")],
    as_json: JsonFlag = False,
) -> None:
    """Repeated stratified 5-fold CV on AI4I 2020 (ROC-AUC, PR-AUC, F1)."""
    from models.runners.evaluate import run_ai4i

    _settings()
    _emit(run_ai4i(data), as_json, "AI4I 2020")


# Command modules under forewarn/commands/, each exposing register(app). Add new areas here.
AREAS: tuple[str, ...] = (
    "api",
    "bench",
    "ingest",
    "simulate",
    "dashboard",
    "rollups",
    "backtest",
    "policy",
    "models",
    "demo",
    "chaos",
    "people",
    "assets",
    "imports",
    "connect",
    "deadletters",
)
for _area in AREAS:
    importlib.import_module(f"forewarn.commands.{_area}").register(app)


def main() -> None:
    """Console entry point: ForewarnError becomes a one-line message and exit code 2."""
    # libpq names our connections after the command (`forewarn ingest`, `forewarn score`...), so
    # pg_stat_activity shows which service holds what; a PGAPPNAME of the operator's own wins
    # (one inherited from a parent `forewarn` process, the supervisor's say, does not)
    if os.environ.get("PGAPPNAME", "forewarn").startswith("forewarn"):
        words = [a for a in sys.argv[1:3] if not a.startswith("-")]
        os.environ["PGAPPNAME"] = " ".join(["forewarn", *words])[:63]
    try:
        app()
    except ForewarnError as exc:
        typer.echo(f"forewarn: {exc}", err=True)
        sys.exit(2)

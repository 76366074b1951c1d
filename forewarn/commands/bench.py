"""`forewarn bench ...`: the benchmark group. Each area adds its subcommand to :data:`bench_app`."""

from __future__ import annotations

import typer

bench_app = typer.Typer(
    no_args_is_help=True, help="Benchmarks on the configured broker and database."
)


def register(app: typer.Typer) -> None:
    """Mount the `bench` group (areas register their subcommands on ``bench_app`` at import)."""
    app.add_typer(bench_app, name="bench")

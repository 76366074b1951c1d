"""`forewarn dashboard` (the Streamlit app) and `forewarn bench dashboard` (page-load timings)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from forewarn.commands.bench import bench_app

STOP_TIMEOUT_S = 10.0


def streamlit_command(host: str, port: int) -> list[str]:
    """The command line that serves dashboard/app.py headless on ``host:port``."""
    import dashboard  # the package only: its modules import Streamlit, the command does not

    app = Path(dashboard.__file__).resolve().parent / "app.py"
    return [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.headless", "true",
        "--server.address", host,
        "--server.port", str(port),
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip


def dashboard(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8501,
) -> None:
    """Serve the dashboard (Streamlit); starts the embedded PostgreSQL when no URL is set."""
    from forewarn.cli import _settings
    from forewarn.storage.db import prepared_database

    settings = _settings()
    with prepared_database(settings) as url:
        env = os.environ | {"FOREWARN_DB__URL": url}
        typer.echo(f"dashboard on http://{host}:{port}")
        proc = subprocess.Popen(streamlit_command(host, port), env=env)
        previous = signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
        try:
            code = proc.wait()
        except KeyboardInterrupt:  # Ctrl-C reaches Streamlit too; give it time to stop
            code = _stop(proc)
        finally:
            signal.signal(signal.SIGTERM, previous)
            if proc.poll() is None:
                code = _stop(proc)
    if code not in (0, -signal.SIGTERM, -signal.SIGINT):
        raise typer.Exit(code)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.terminate()
    try:
        return proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


@bench_app.command("dashboard")
def bench_dashboard_cmd(
    machines: Annotated[int, typer.Option(help="Machines to seed.")] = 500,
    days: Annotated[float, typer.Option(help="Days of history to seed.")] = 7.0,
    repeat: Annotated[int, typer.Option(help="Timed loads per page (the median is reported).")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Seed a scratch schema with a week of plant data and time each dashboard page's data load."""
    from forewarn.cli import _emit, _settings
    from forewarn.storage.db import prepared_database
    from tools.bench.dashboard import bench_dashboard

    settings = _settings()
    with prepared_database(settings) as url:
        result = bench_dashboard(url, machines=machines, days=days, repeat=repeat)
    _emit(result, as_json, "Dashboard page loads")


def register(app: typer.Typer) -> None:
    """Add `dashboard` to the CLI (`bench dashboard` registers on import)."""
    app.command("dashboard")(dashboard)

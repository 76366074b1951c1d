"""`forewarn dashboard` (the Streamlit app)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

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


def register(app: typer.Typer) -> None:
    """Add `dashboard` to the CLI."""
    app.command("dashboard")(dashboard)

"""The demo keeps its ports and admin credentials across runs (printed once, retrievable)."""

from __future__ import annotations

import json
import socket
import stat
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from forewarn.cli import app
from forewarn.demo import _reuse_port, ensure_access, load_access, save_access
from forewarn.storage.keys import lookup_key
from forewarn.storage.people import authenticate


def test_access_is_kept_across_runs_and_retrievable(
    db_url: str, tmp_path: Path, monkeypatch
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        first, fresh = ensure_access(conn, load_access(tmp_path), 18080, 18501)
        assert fresh
        save_access(tmp_path, first)
        again, fresh_again = ensure_access(conn, load_access(tmp_path), 18080, 18501)
        assert not fresh_again and again == first
        assert lookup_key(conn, first["api_key"]) is not None
        person = authenticate(
            conn, first["admin_email"], first["admin_password"], now=datetime.now(UTC)
        )
        assert person is not None and person.role == "admin"
    assert stat.S_IMODE((tmp_path / "demo-access.json").stat().st_mode) == 0o600
    monkeypatch.setenv("FOREWARN_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("FOREWARN_DB__URL", db_url)
    shown = CliRunner().invoke(app, ["demo", "--credentials"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["admin_password"] == first["admin_password"]


def _port_left_in_time_wait() -> int:
    """A loopback port whose server closed a connection first, as the last run's API did on exit:
    the port is held by a socket in TIME_WAIT, with no listener."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = int(server.getsockname()[1])
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first: its end waits in TIME_WAIT
    client.close()
    server.close()
    with socket.socket() as plain, pytest.raises(OSError):  # the probe's old plain bind: refused
        plain.bind(("127.0.0.1", port))
    return port


def test_an_immediate_rerun_keeps_the_port_its_last_run_left_in_time_wait() -> None:
    port = _port_left_in_time_wait()
    assert _reuse_port(port) == port
    with socket.create_server(("127.0.0.1", port)):  # and uvicorn can indeed listen on it
        pass


def test_a_port_still_listened_on_is_not_reused() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = int(busy.getsockname()[1])
        other = _reuse_port(port)
        assert other != port
        with socket.create_server(("127.0.0.1", other)):  # the replacement is really free
            pass

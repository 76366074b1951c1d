"""The demo keeps its ports and admin credentials across runs (printed once, retrievable)."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from typer.testing import CliRunner

from forewarn.cli import app
from forewarn.demo import ensure_access, load_access, save_access
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

"""Bounded dead letters (issue 18): an excerpt with size and sha256, pruned by `forewarn maintain`,
and `forewarn deadletters list|replay` re-ingesting the ones that validate after a registry fix."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import psycopg
from typer.testing import CliRunner

from forewarn.cli import app
from forewarn.contract import encode, topic_for
from forewarn.settings import load_settings
from forewarn.storage.assets import upsert_registry
from forewarn.storage.maintenance import run_maintenance
from forewarn.storage.readings import insert_dead_letters
from tests.factories import make_registry, make_telemetry


def test_a_2_mib_payload_keeps_an_excerpt_with_its_size_and_sha256(db: psycopg.Connection) -> None:
    payload = b'{"pad":"' + b"x" * (2 * 1024 * 1024) + b'"}'
    with db.transaction():
        insert_dead_letters(db, [("t/x", payload, "oversized", "too big")], excerpt_bytes=1024)
    stored, size, digest = db.execute(
        "select payload, size_bytes, sha256 from dead_letters"
    ).fetchone()
    assert bytes(stored) == payload[:1024]
    assert size == len(payload) and digest == hashlib.sha256(payload).hexdigest()


def test_maintain_prunes_dead_letters_past_their_retention(db: psycopg.Connection) -> None:
    now = datetime.now(UTC)
    with db.transaction():
        insert_dead_letters(
            db, [("t/old", b"{", "not_json", "x"), ("t/new", b"{", "not_json", "x")]
        )
        db.execute("update dead_letters set received_at = %s where topic = 't/old'",
                   (now - timedelta(days=31),))  # fmt: skip
    result = run_maintenance(db, load_settings(db={"dead_letter_retention_days": 30}), now)
    assert result["dead_letters_pruned"] == 1
    assert db.execute("select topic from dead_letters").fetchall() == [("t/new",)]


def test_replay_ingests_what_validates_after_a_registry_fix_and_is_idempotent(
    db_url: str, monkeypatch
) -> None:
    monkeypatch.setenv("FOREWARN_DB__URL", db_url)
    reg = make_registry(machines=2)
    late_machine = reg.machines[1]
    with psycopg.connect(db_url) as conn:  # the second machine is not registered yet
        upsert_registry(conn, reg.__class__(reg.sites, reg.lines, reg.types, reg.machines[:1]))
        readings = [make_telemetry(late_machine.id, seq) for seq in (1, 2, 3)]
        rows = [
            (
                topic_for("s1", t.machine, "telemetry"),
                encode(t),
                "unknown_machine",
                "not registered",
            )
            for t in readings
        ]
        rows.append((topic_for("s1", "ghost", "telemetry"), b'{"machine":"ghost"}', "schema", "x"))
        insert_dead_letters(conn, rows)
        conn.commit()

    runner = CliRunner()
    listed = runner.invoke(app, ["deadletters", "list", "--reason", "unknown_machine"])
    assert listed.exit_code == 0, listed.output
    lines = [json.loads(x) for x in listed.output.strip().splitlines()]
    assert [x["reason"] for x in lines[:-1]] == ["unknown_machine"] * 3
    assert lines[-1] == {"pending_by_reason": {"schema": 1, "unknown_machine": 3}}

    with psycopg.connect(db_url) as conn:  # the operator registers the machine
        upsert_registry(conn, reg)
        conn.commit()
    first = runner.invoke(app, ["deadletters", "replay"])
    assert first.exit_code == 0, first.output
    out = json.loads(first.output.strip().splitlines()[-1])
    assert out["replayed"] == 3 and out["readings_stored"] == 3
    assert out["still_rejected"] == {"unknown_machine": 1}  # the ghost, judged again today
    again = runner.invoke(app, ["deadletters", "replay"])
    assert json.loads(again.output.strip().splitlines()[-1])["replayed"] == 0
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("select machine_id, seq from readings order by seq").fetchall()
        marked = conn.execute("select count(*) from dead_letters where replayed_at is not null")
        assert marked.fetchone() == (3,)
    assert stored == [(late_machine.id, 1), (late_machine.id, 2), (late_machine.id, 3)]

"""Migrations and core storage on the machine's PostgreSQL 15 and the embedded PostgreSQL 18."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from forewarn.storage.assets import load_registry, registry_fingerprint, upsert_registry
from forewarn.storage.migrate import applied_migrations, available_migrations, migrate
from forewarn.storage.readings import insert_dead_letters, insert_events, insert_readings
from forewarn.storage.schemas import schema_url as with_schema
from tests.factories import make_event, make_registry, make_telemetry

CORE_TABLES = {
    "sites",
    "lines",
    "machine_types",
    "machines",
    "readings",
    "machine_events",
    "dead_letters",
    "predictions",
    "alerts",
    "alert_transitions",
    "model_versions",
    "model_aliases",
    "model_checkpoints",
    "api_keys",
    "audit_log",
    "schema_migrations",
}


def _tables(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute(
        "select table_name from information_schema.tables where table_schema = current_schema()"
    )
    return {r[0] for r in rows}


def _schema_fingerprint(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    return conn.execute(
        "select table_name, column_name, data_type from information_schema.columns"
        " where table_schema = current_schema() order by 1, 2"
    ).fetchall()


def test_migrations_from_empty_and_rerun_changes_nothing(any_db_url: str) -> None:
    with psycopg.connect(any_db_url) as conn:
        assert _tables(conn) >= CORE_TABLES
        names = [n for n, _ in available_migrations()]
        assert applied_migrations(conn) == names
        before = _schema_fingerprint(conn)
        assert migrate(conn) == []
        assert _schema_fingerprint(conn) == before
        assert applied_migrations(conn) == names


def test_two_concurrent_migrations_apply_each_once(pg_server_url: str) -> None:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f"create schema {schema}")
    url = with_schema(pg_server_url, schema)
    results: list[list[str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            with psycopg.connect(url) as conn:
                barrier.wait()
                results.append(migrate(conn))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == []
        names = [n for n, _ in available_migrations()]
        assert sorted(results, key=len) == [[], names]
        with psycopg.connect(url) as conn:
            count = conn.execute("select count(*) from schema_migrations").fetchone()
            assert count is not None and count[0] == len(names)
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(f"drop schema {schema} cascade")


def test_registry_round_trip(any_db_url: str) -> None:
    reg = make_registry(machines=4)
    with psycopg.connect(any_db_url) as conn:
        upsert_registry(conn, reg)
        upsert_registry(conn, reg)  # idempotent
        conn.commit()
        loaded = load_registry(conn)
    assert loaded.sites == reg.sites
    assert loaded.lines == reg.lines
    assert loaded.types == reg.types
    assert loaded.machines == reg.machines
    assert loaded.specs()["s1-pump-001"].bounds["bearing_temp"] == (-20.0, 150.0)


def test_registry_fingerprint_follows_what_the_scorer_uses(any_db_url: str) -> None:
    """The streaming scorer reloads the registry only when this changes (models.runners.scoring)."""
    from dataclasses import replace

    from forewarn.assets import Machine, MachineType, SensorSpec

    reg = make_registry(machines=4)
    with psycopg.connect(any_db_url, autocommit=True) as conn:
        upsert_registry(conn, reg)
        seen = [registry_fingerprint(conn)]
        upsert_registry(conn, reg)  # the same registry written again
        assert registry_fingerprint(conn) == seen[-1]
        reg.machines.append(Machine("s1-pump-004", "s1", "s1-l1", "pump"))
        upsert_registry(conn, reg)
        seen.append(registry_fingerprint(conn))
        rpm = (SensorSpec("rpm", "1/min", 0.0, 3000.0),)
        fan = MachineType("fan", "Fan", rpm, ("random",), reg.types[0].costs)
        reg.types.append(fan)
        reg.machines[1] = replace(reg.machines[1], type_id="fan")
        upsert_registry(conn, reg)
        seen.append(registry_fingerprint(conn))
        reg.types[1] = replace(fan, sensors=(SensorSpec("rpm", "1/min", 0.0, 6000.0),))
        upsert_registry(conn, reg)
        seen.append(registry_fingerprint(conn))
        conn.execute("delete from machines where id = 's1-pump-004'")
        seen.append(registry_fingerprint(conn))
    assert len(set(seen)) == len(seen), seen


def test_duplicate_readings_are_stored_once(any_db_url: str) -> None:
    with psycopg.connect(any_db_url) as conn:
        upsert_registry(conn, make_registry())
        batch = [make_telemetry(seq=i) for i in range(1, 101)]
        assert insert_readings(conn, batch) == 100
        conn.commit()
        # a redelivery of half the batch plus 10 new ones, with a duplicate inside the batch too
        again = batch[50:] + [make_telemetry(seq=i) for i in range(101, 111)] + [batch[0]]
        assert insert_readings(conn, again) == 10
        conn.commit()
        count = conn.execute("select count(*), count(distinct seq) from readings").fetchone()
        assert count == (110, 110)
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "insert into readings (machine_id, seq, ts, values) values (%s, %s, %s, '{}')",
                (batch[0].machine, batch[0].seq, batch[0].ts),
            )


def test_events_and_dead_letters(db: psycopg.Connection) -> None:
    upsert_registry(db, make_registry())
    events = [
        make_event(seq=5),
        make_event(seq=6, event="maintenance", mode=None, kind="repair", duration_s=3600.0),
    ]
    assert insert_events(db, events) == 2
    assert insert_events(db, events) == 0
    assert (
        insert_dead_letters(db, [("forewarn/v1/s1/x/telemetry", b"\xff\x00", "not_json", "bad")])
        == 1
    )
    db.commit()
    row = db.execute("select topic, payload, reason from dead_letters").fetchone()
    assert row == ("forewarn/v1/s1/x/telemetry", b"\xff\x00", "not_json")
    kinds = db.execute("select event, kind from machine_events order by seq").fetchall()
    assert kinds == [("failure", None), ("maintenance", "repair")]

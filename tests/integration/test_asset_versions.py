"""Asset versions are read, not just recorded: a reading is judged and modelled by the registry's
version in effect when it was taken (history import, live ingest, dead-letter replay, training,
scoring and the history backtest)."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from forewarn.asset_file import AssetFile
from forewarn.cli import app
from forewarn.contract import Telemetry, encode, topic_for
from forewarn.storage.assets import apply_assets, machine_type_periods
from forewarn.storage.readings import insert_dead_letters
from ingest.history_import import import_readings
from ingest.import_files import ImportMapping
from models.runners.history import hourly_from_db
from tests.integration.ingest_support import Publisher, count, running, wait_until, worker_settings

pytestmark = pytest.mark.timeout(180)

SITE = "plant-a"
T1 = datetime(2026, 6, 1, tzinfo=UTC)  # when the registry changes in most tests
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _plant(vibration_max: float, *, p2_type: str = "hyd-pump") -> AssetFile:
    return AssetFile.model_validate(
        {
            "sites": [{"id": SITE}],
            "machine_types": [
                {
                    "id": "hyd-pump",
                    "name": "Hydraulic pump",
                    "failure_modes": ["bearing"],
                    "sensors": [
                        {"name": "vibration", "unit": "mm/s", "min": 0, "max": vibration_max},
                        {"name": "oil_temp", "unit": "degC", "min": -20, "max": 140},
                    ],
                },
                {
                    "id": "big-pump",
                    "name": "Big pump",
                    "failure_modes": ["seal"],
                    "sensors": [
                        {"name": "vibration", "unit": "mm/s", "min": 0, "max": 120},
                        {"name": "flow", "unit": "m3/h", "min": 0, "max": 500},
                    ],
                },
            ],
            "machines": [
                {"id": "p1", "site": SITE, "type": "hyd-pump"},
                {"id": "p2", "site": SITE, "type": p2_type},
            ],
        }
    )


def _rows(db: psycopg.Connection) -> list[tuple[str, datetime, dict[str, float]]]:
    got = db.execute("select machine_id, ts, values from readings order by machine_id, ts")
    return [(r[0], r[1], r[2]) for r in got.fetchall()]


def _rejects(path: Path) -> list[tuple[str, str, str]]:
    with path.with_name(path.name + ".rejects.csv").open(encoding="utf-8", newline="") as f:
        return [(r["machine"], r["reason"], r["detail"]) for r in csv.DictReader(f)]


def test_history_imported_after_tightening_is_judged_by_the_bounds_of_its_time(
    db: psycopg.Connection, tmp_path: Path
) -> None:
    apply_assets(db, _plant(50), actor="t", now=datetime(2026, 1, 1, tzinfo=UTC))
    apply_assets(db, _plant(30), actor="t", now=T1)  # vibration tightened to [0, 30] at T1
    path = tmp_path / "history.csv"
    path.write_text(
        "machine,ts,vibration,oil_temp\n"
        "p1,2026-03-01T00:00:00Z,45,60\n"  # under [0, 50]: stored
        "p1,2026-05-31T23:59:59Z,49.5,60\n"  # the last second of the old bounds
        "p1,2026-06-01T00:00:00Z,45,60\n"  # from T1 on, [0, 30]: rejected
        "p1,2026-07-01T00:00:00Z,20,61\n"
        "p1,2026-03-02T00:00:00Z,55,60\n",  # out of the old bounds too
        encoding="utf-8",
    )
    summary = import_readings(db, path, ImportMapping(), now=NOW)
    assert (summary.stored, summary.rejected) == (3, 2)
    assert [(m, ts, v["vibration"]) for m, ts, v in _rows(db)] == [
        ("p1", datetime(2026, 3, 1, tzinfo=UTC), 45.0),
        ("p1", datetime(2026, 5, 31, 23, 59, 59, tzinfo=UTC), 49.5),
        ("p1", datetime(2026, 7, 1, tzinfo=UTC), 20.0),
    ]
    assert sorted(_rejects(path)) == [
        ("p1", "out_of_bounds", "vibration=45 outside [0, 30]"),
        ("p1", "out_of_bounds", "vibration=55 outside [0, 50]"),
    ]
    # the long shape goes through the same rule
    long = tmp_path / "long.csv"
    long.write_text(
        "machine,sensor,ts,value\n"
        "p2,vibration,2026-04-01T00:00:00Z,45\n"
        "p2,vibration,2026-08-01T00:00:00Z,45\n",
        encoding="utf-8",
    )
    summary = import_readings(db, long, ImportMapping(), now=NOW)
    assert (summary.stored, summary.rejected) == (1, 1)
    assert _rejects(long) == [("p2", "out_of_bounds", "vibration=45 outside [0, 30]")]


def test_a_type_change_keeps_older_readings_under_the_older_type(
    db: psycopg.Connection, tmp_path: Path
) -> None:
    apply_assets(db, _plant(50), actor="t", now=datetime(2026, 1, 1, tzinfo=UTC))
    apply_assets(db, _plant(50, p2_type="big-pump"), actor="t", now=T1)
    path = tmp_path / "history.csv"
    path.write_text(
        "machine,ts,vibration,oil_temp,flow\n"
        "p2,2026-05-31T22:10:00Z,10,60,\n"  # a hyd-pump then: oil_temp is its sensor
        "p2,2026-05-31T23:50:00Z,80,,\n"  # out of the hyd-pump's [0, 50]
        "p2,2026-06-01T00:10:00Z,80,,300\n"  # a big-pump since T1: [0, 120], flow
        "p2,2026-06-01T01:10:00Z,12,61,\n"  # oil_temp is no sensor of a big-pump
        "p2,2026-05-31T21:10:00Z,10,,300\n",  # nor flow of a hyd-pump
        encoding="utf-8",
    )
    summary = import_readings(db, path, ImportMapping(), now=NOW)
    assert (summary.stored, summary.rejected) == (2, 3)
    assert sorted(_rejects(path)) == [
        ("p2", "out_of_bounds", "vibration=80 outside [0, 50]"),
        ("p2", "unknown_sensor", "flow is not a sensor of hyd-pump"),
        ("p2", "unknown_sensor", "oil_temp is not a sensor of big-pump"),
    ]
    # the models see p2 as a hyd-pump until T1 and as a big-pump from T1 on, never both at once
    periods = machine_type_periods(db)
    assert periods["big-pump"] == {"p2": [(T1, None)]}
    old = hourly_from_db(db, ["p1", "p2"], ["vibration", "oil_temp"], None, None,
                         periods["hyd-pump"])  # fmt: skip
    new = hourly_from_db(db, ["p2"], ["vibration", "flow"], None, None, periods["big-pump"])
    assert old[["machine_id", "vibration", "oil_temp"]].values.tolist() == [["p2", 10.0, 60.0]]
    assert new[["machine_id", "vibration", "flow", "maintenance"]].values.tolist() == [
        ["p2", 80.0, 300.0, True]  # the hour it became a big-pump starts a new episode
    ]


def test_live_reading_out_of_the_new_bounds_is_dead_lettered_a_late_old_one_is_stored(
    db_url: str, mqtt_url: str, topic_root: str
) -> None:
    now = datetime.now(UTC)
    change = now - timedelta(hours=1)
    with psycopg.connect(db_url) as conn:
        apply_assets(conn, _plant(50), actor="t", now=now - timedelta(days=30))
        apply_assets(conn, _plant(30), actor="t", now=change)

    def msg(seq: int, ts: datetime, vibration: float) -> tuple[str, bytes]:
        t = Telemetry(SITE, "p1", ts, seq, {"vibration": vibration, "oil_temp": 60.0})
        return topic_for(SITE, "p1", "telemetry", topic_root), encode(t)

    messages = [
        msg(1, change - timedelta(minutes=30), 45.0),  # buffered at the edge, taken before: ok
        msg(2, now, 45.0),  # live, out of the new [0, 30]
        msg(3, now + timedelta(seconds=1), 20.0),
    ]
    pub = Publisher(mqtt_url)
    try:
        with running(worker_settings(topic_root), db_url, mqtt_url):
            pub.publish(messages)
            wait_until(
                lambda: count(db_url, "readings") + count(db_url, "dead_letters") == 3,
                what="3 messages settled",
            )
    finally:
        pub.close()
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("select seq, values->>'vibration' from readings order by seq")
        assert stored.fetchall() == [(1, "45.0"), (3, "20.0")]
        dead = conn.execute("select reason, detail from dead_letters").fetchall()
    assert dead == [("out_of_bounds", "values.vibration=45 outside [0, 30]")]


def test_replay_judges_each_dead_letter_by_the_bounds_of_its_time(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bounds widened at T1 (a new sensor): a letter rejected under the old bounds for a reading
    taken before stays rejected; one taken after T1 (dead-lettered while ingest still held the old
    registry) replays."""
    monkeypatch.setenv("FOREWARN_DB__URL", db_url)
    with psycopg.connect(db_url) as conn:
        apply_assets(conn, _plant(50), actor="t", now=datetime(2026, 1, 1, tzinfo=UTC))
        apply_assets(conn, _plant(80), actor="t", now=T1)
        letters = []
        for seq, ts in ((1, T1 - timedelta(hours=1)), (2, T1 + timedelta(hours=1))):
            t = Telemetry(SITE, "p1", ts, seq, {"vibration": 60.0})
            letters.append(
                (topic_for(SITE, "p1", "telemetry"), encode(t), "out_of_bounds", "old bounds")
            )
        insert_dead_letters(conn, letters)
        conn.commit()
    result = CliRunner().invoke(app, ["deadletters", "replay"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert out["replayed"] == 1 and out["readings_stored"] == 1
    assert out["still_rejected"] == {"out_of_bounds": 1}
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select seq from readings").fetchall() == [(2,)]


def test_assets_show_lists_a_machines_versions(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOREWARN_DB__URL", db_url)
    with psycopg.connect(db_url) as conn:
        apply_assets(conn, _plant(50), actor="t", now=datetime(2026, 1, 1, tzinfo=UTC))
        apply_assets(conn, _plant(30), actor="t", now=T1)
        t2 = T1 + timedelta(days=30)
        apply_assets(conn, _plant(30, p2_type="big-pump"), actor="t", now=t2)
        conn.commit()
    result = CliRunner().invoke(app, ["assets", "show", "p2", "--json"])
    assert result.exit_code == 0, result.output
    versions = json.loads(result.output)["versions"]
    assert [(v["valid_from"][:10], v["type_id"], v["changes"]) for v in versions] == [
        ("1900-01-01", "hyd-pump", ["type hyd-pump (2 sensors)"]),
        ("2026-06-01", "hyd-pump", ["vibration bounds [0, 50] -> [0, 30]"]),
        ("2026-07-01", "big-pump", ["type hyd-pump -> big-pump"]),
    ]


def test_a_version_is_never_valid_before_the_newest_one(db: psycopg.Connection) -> None:
    """A registration dated in the past (a Sparkplug birth's own time) cannot slip under a newer
    version: it holds from that version on."""
    from forewarn.assets import SensorSpec
    from forewarn.storage.assets import ensure_sensor, type_versions

    apply_assets(db, _plant(50), actor="t", now=datetime(2026, 1, 1, tzinfo=UTC))
    apply_assets(db, _plant(30), actor="t", now=T1)
    flow = SensorSpec("flow", "m3/h", 0, 500)
    assert ensure_sensor(db, "hyd-pump", flow, actor="t", now=T1 - timedelta(days=60))
    assert [v["valid_from"] for v in type_versions(db, "hyd-pump")][1:] == [T1, T1]


# ---- models on a history that crosses a type change ----------------------------------------

P, C = "s1-pump-000", "s1-cnc-000"  # P is a pump until TC, then a cnc machine (C's signals)
TC = datetime(2026, 1, 13, tzinfo=UTC)
DAYS = 21


@pytest.fixture(scope="module")
def changed_history():  # type: ignore[no-untyped-def]
    """A simulated plant in which P changes from pump to cnc at TC: P's own readings and events
    until TC, then those of cnc machine C (relabelled as P, new seqs)."""
    from forewarn.factory import load_factory
    from simulator.engine import run_history

    factory = load_factory(None, machines=10)
    messages = []
    for m in run_history(factory, DAYS * 24.0, seed=11).messages:
        if m.machine == P and m.ts >= TC:
            continue
        messages.append(m)
        if m.machine == C and m.ts >= TC:
            messages.append(replace(m, machine=P, seq=m.seq + 10**9))
    return factory, messages


def _load_changed(url: str, factory, messages) -> None:  # type: ignore[no-untyped-def]
    from forewarn.contract import Event
    from forewarn.storage.assets import upsert_machine, upsert_registry
    from forewarn.storage.readings import insert_events, insert_readings

    with psycopg.connect(url) as conn:
        upsert_registry(conn, factory.registry())
        upsert_machine(conn, P, site_id="s1", type_id="cnc", line_id=None, actor="t", now=TC)
        insert_readings(conn, [m for m in messages if isinstance(m, Telemetry)])
        insert_events(conn, [m for m in messages if isinstance(m, Event)])


def test_training_and_scoring_read_each_period_under_its_type(db_url: str, changed_history) -> None:  # type: ignore[no-untyped-def]
    from forewarn.settings import load_settings
    from models.runners.history import machine_types, members
    from models.runners.model_registry import load_alias, model_name
    from models.runners.scoring import ScoringState, score_once
    from models.runners.training import train_from_db

    factory, messages = changed_history
    _load_changed(db_url, factory, messages)
    with psycopg.connect(db_url, autocommit=True) as conn:
        periods = machine_type_periods(conn)
        assert periods["pump"][P] == [(datetime(1900, 1, 1, tzinfo=UTC), TC)]
        assert periods["cnc"][P] == [(TC, None)]
        sensors = {t.id: [s.name for s in t.sensors] for t, _ in machine_types(conn)}
        frames = {
            t: hourly_from_db(conn, members([], periods[t]), sensors[t], None, None, periods[t])
            for t in ("pump", "cnc")
        }
        as_pump = frames["pump"][frames["pump"]["machine_id"] == P]
        as_cnc = frames["cnc"][frames["cnc"]["machine_id"] == P]
        assert len(as_pump) > 0 and as_pump["ts"].max() < TC
        assert len(as_cnc) > 0 and as_cnc["ts"].min() == TC
        # no hour of P is read with the other type's sensors (all of them missing)
        assert as_pump[sensors["pump"]].notna().any(axis=1).all()
        assert as_cnc[sensors["cnc"]].notna().any(axis=1).all()
        assert as_cnc["maintenance"].iloc[0]  # the type change starts a new episode
        # what reading P's whole history as a cnc machine would have mixed in
        unclipped = hourly_from_db(conn, [P], sensors["cnc"], None, None)
        assert unclipped[sensors["cnc"]].isna().all(axis=1).sum() == len(as_pump)

        trained = train_from_db(conn, horizon_h=48.0, seed=1)
        assert {"pump", "cnc"} <= {r.type_id for r in trained}
        assert score_once(conn, load_settings(), ScoringState()) > 0
        cnc_model = load_alias(conn, model_name("cnc"), "champion")
        assert cnc_model is not None
        scored = conn.execute(
            "select distinct model_version_id from predictions"
            " where machine_id = %s and role = 'champion'",
            (P,),
        ).fetchall()
    assert scored == [(cnc_model.id,)]  # P is scored now as what it is now


def test_history_backtest_across_a_type_change(db_url: str, changed_history) -> None:  # type: ignore[no-untyped-def]
    from models.runners.holdout import load_readings, train_and_score

    factory, messages = changed_history
    _load_changed(db_url, factory, messages)
    start = factory.start
    end = start + timedelta(days=DAYS)
    with psycopg.connect(db_url) as conn:
        periods = machine_type_periods(conn)
        sensors = {t.id: [s.name for s in t.sensors] for t in factory.registry().types}
        for type_id, inside in (("pump", lambda ts: ts < TC), ("cnc", lambda ts: ts >= TC)):
            df = load_readings(conn, periods[type_id], sensors[type_id], end)
            mine = df[df["machine_id"] == P]
            assert len(mine) > 0 and mine["ts"].map(inside).all()
            assert mine[sensors[type_id]].notna().any(axis=1).all()
        metrics = train_and_score(
            conn,
            start=start,
            split=start + timedelta(days=DAYS * 0.6),
            end=end,
            horizon_h=48.0,
        )
    assert {"pump", "cnc"} <= set(metrics)

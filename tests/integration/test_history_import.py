"""History import: historian exports (wide/long CSV, Parquet) and CMMS logs into the database."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from forewarn.asset_file import AssetFile
from forewarn.errors import InputError
from forewarn.storage.assets import apply_assets
from ingest.history_import import EventMapping, import_events, import_readings
from ingest.import_files import ImportMapping

NOW = datetime(2026, 12, 1, tzinfo=UTC)
ASSETS = AssetFile.model_validate(
    {
        "sites": [{"id": "s"}],
        "machine_types": [
            {
                "id": "pump",
                "name": "Pump",
                "failure_modes": ["bearing", "seal"],
                "sensors": [
                    {"name": "vibration", "unit": "mm/s", "min": 0, "max": 50},
                    {"name": "oil_temp", "unit": "degC", "min": -20, "max": 140},
                ],
            }
        ],
        "machines": [{"id": f"p{i}", "site": "s", "type": "pump"} for i in (1, 2)],
    }
)


@pytest.fixture
def plant(db: psycopg.Connection) -> psycopg.Connection:
    apply_assets(db, ASSETS, actor="test", now=NOW)
    return db


def _readings(db: psycopg.Connection) -> list[tuple[str, datetime, dict[str, float]]]:
    rows = db.execute("select machine_id, ts, values from readings order by machine_id, ts")
    return [(r[0], r[1], r[2]) for r in rows.fetchall()]


WIDE = """machine,ts,vibration,oil_temp
p1,2026-01-01T00:00:00Z,1.5,40
p1,2026-01-01 01:05:00,1.6,41
p2,2026-01-01T00:00:00+02:00,2.5,
p9,2026-01-01T00:10:00Z,1.6,41
p1,2026-01-01T00:15:00Z,abc,41
p1,2026-01-01T00:20:00Z,99,41
p1,yesterday,1,41
p1,2026-01-01T00:25:00Z,,
p1,2099-01-01T00:00:00Z,1,41
"""


def test_wide_csv_stores_rejects_with_reasons_and_reimports_nothing(
    plant: psycopg.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "export.csv"
    path.write_text(WIDE, encoding="utf-8")
    seen: list[int] = []
    mapping = ImportMapping(timezone="Europe/Berlin")
    first = import_readings(plant, path, mapping, now=NOW, progress=seen.append)
    assert (first.rows, first.stored, first.duplicates, first.rejected) == (9, 3, 0, 6)
    assert sum(seen) == 9
    assert _readings(plant) == [
        ("p1", datetime(2026, 1, 1, 0, 0, tzinfo=UTC), {"vibration": 1.5, "oil_temp": 40.0}),
        # naive local time in Europe/Berlin (UTC+1 in winter)
        ("p1", datetime(2026, 1, 1, 0, 5, tzinfo=UTC), {"vibration": 1.6, "oil_temp": 41.0}),
        ("p2", datetime(2025, 12, 31, 22, 0, tzinfo=UTC), {"vibration": 2.5}),
    ]
    with Path(first.rejects_file or "").open(encoding="utf-8") as f:
        rejects = {int(r["row"]): (r["reason"], r["detail"]) for r in csv.DictReader(f)}
    assert {row: reason for row, (reason, _) in rejects.items()} == {
        4: "unknown_machine",
        5: "not_a_number",
        6: "out_of_bounds",
        7: "bad_timestamp",
        8: "no_values",
        9: "out_of_range_timestamp",
    }
    assert rejects[6][1] == "vibration=99 outside [0, 50]"
    again = import_readings(plant, path, mapping, now=NOW)
    assert (again.stored, again.duplicates, again.rejected) == (0, 3, 6)
    assert len(_readings(plant)) == 3


def test_two_exports_of_different_sensors_merge_into_one_reading(
    plant: psycopg.Connection, tmp_path: Path
) -> None:
    a, b = tmp_path / "vib.csv", tmp_path / "temp.csv"
    a.write_text("ts,vibration\n2026-01-01T00:00:00Z,1.0\n2026-01-01T00:01:00Z,1.1\n")
    b.write_text("ts,oil_temp\n2026-01-01T00:00:00Z,50\n")
    one = ImportMapping(machine_id="p1")
    assert import_readings(plant, a, one, now=NOW).stored == 2
    assert import_readings(plant, b, one, now=NOW).stored == 1
    assert _readings(plant)[0][2] == {"vibration": 1.0, "oil_temp": 50.0}
    assert import_readings(plant, b, one, now=NOW).duplicates == 1


def test_long_parquet_with_a_mapping_and_batches(plant: psycopg.Connection, tmp_path: Path) -> None:
    times = pd.date_range("2026-02-01", periods=30, freq="min")  # naive: local plant time
    rows = [
        {"Asset": f"p{1 + i % 2}", "Time": t, "Tag": tag, "Val": float(i)}
        for i, t in enumerate(times)
        for tag in ("VIB", "TEMP")
    ]
    path = tmp_path / "long.parquet"
    pd.DataFrame(rows).to_parquet(path)
    mapping = ImportMapping(
        shape="long", machine="Asset", ts="Time", sensor="Tag", value="Val",
        timezone="America/New_York", sensors={"VIB": "vibration", "TEMP": "oil_temp"},
    )  # fmt: skip
    # batches of 7 rows split some readings' two values across batches: they still merge
    s = import_readings(plant, path, mapping, now=NOW, batch_rows=7)
    assert (s.shape, s.rows, s.stored, s.rejected) == ("long", 60, 60, 0)
    stored = _readings(plant)
    assert len(stored) == 30 and all(set(v) == {"vibration", "oil_temp"} for _, _, v in stored)
    assert min(ts for _, ts, _ in stored) == datetime(2026, 2, 1, 5, 0, tzinfo=UTC)
    again = import_readings(plant, path, mapping, now=NOW, batch_rows=7)
    assert (again.stored, again.duplicates) == (0, 60)


def test_a_column_that_is_no_sensor_is_an_error_before_anything_is_stored(
    plant: psycopg.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "x.csv"
    path.write_text("machine,ts,vibration,colour\np1,2026-01-01T00:00:00Z,1,red\n")
    with pytest.raises(InputError, match="column 'colour' is not a sensor"):
        import_readings(plant, path, ImportMapping(), now=NOW)
    assert _readings(plant) == []
    s = import_readings(plant, path, ImportMapping(ignore=["colour"]), now=NOW)
    assert s.stored == 1


EVENTS = """WO,Asset,Start,End,Type,Mode,Cost
WO-1,p1,01.01.2026 02:00,01.01.2026 08:00,Breakdown,bearing,9000
WO-2,p1,02.01.2026 02:00,02.01.2026 04:00,PM,,1200
WO-3,p1,03.01.2026 02:00,02.01.2026 04:00,PM,,1200
WO-4,p2,04.01.2026 02:00,,Inspection,,100
WO-5,p2,05.01.2026 02:00,,Breakdown,gearbox,100
WO-6,p2,05.01.2026 03:00,,Lunch,,0
WO-7,p2,06.01.2026 03:00,06.01.2026 04:00,Rebuild,,-5
"""


def test_cmms_log_becomes_failures_and_maintenance(
    plant: psycopg.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "cmms.csv"
    path.write_text(EVENTS, encoding="utf-8")
    mapping = EventMapping(
        machine="Asset", start="Start", end="End", kind="Type", failure_mode="Mode",
        cost="Cost", work_order="WO", ts_format="%d.%m.%Y %H:%M", kinds={"Rebuild": "repair"},
    )  # fmt: skip
    s = import_events(plant, path, mapping, now=NOW)
    assert (s.rows, s.stored, s.rejected) == (7, 4, 4)  # WO-1 is a failure and its repair
    assert dict(s.reasons) == {
        "end_before_start": 1, "unknown_failure_mode": 1, "unknown_kind": 1, "bad_cost": 1,
    }  # fmt: skip
    events = plant.execute(
        "select machine_id, ts, event, mode, kind, duration_s, detail->>'work_order',"
        " detail->>'trigger' from machine_events order by ts, event"
    ).fetchall()
    assert events == [
        ("p1", datetime(2026, 1, 1, 2, tzinfo=UTC), "failure", "bearing", None, None, "WO-1", None),
        ("p1", datetime(2026, 1, 1, 8, tzinfo=UTC), "maintenance", None, "repair", 21600.0, "WO-1",
         "failure"),
        ("p1", datetime(2026, 1, 2, 4, tzinfo=UTC), "maintenance", None, "preventive", 7200.0,
         "WO-2", "schedule"),
        ("p2", datetime(2026, 1, 4, 2, tzinfo=UTC), "maintenance", None, "inspection", None, "WO-4",
         "order"),
    ]  # fmt: skip
    again = import_events(plant, path, mapping, now=NOW)
    assert (again.stored, again.duplicates) == (0, 4)


def test_cli_import_readings_prints_a_summary(db_url: str, tmp_path: Path) -> None:
    env = {"FOREWARN_DB__URL": db_url, "FOREWARN_LOG_LEVEL": "WARNING", "PATH": "/usr/bin:/bin"}
    with psycopg.connect(db_url) as conn:
        apply_assets(conn, ASSETS, actor="test", now=NOW)
    path = tmp_path / "export.csv"
    path.write_text(WIDE, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "forewarn", "import", "readings", str(path), "--timezone",
         "Europe/Berlin", "--rejects", str(tmp_path / "bad.csv"), "--json"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert (summary["stored"], summary["rejected"]) == (3, 6)
    assert summary["rejects_file"] == str(tmp_path / "bad.csv")
    bad_zone = subprocess.run(
        [sys.executable, "-m", "forewarn", "import", "readings", str(path), "--timezone", "Mars/Olympus"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert bad_zone.returncode == 2 and "unknown time zone 'Mars/Olympus'" in bad_zone.stderr

"""Asset onboarding: files in, one transaction, versions that keep the meaning of past readings."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from forewarn.asset_file import parse_asset_file
from forewarn.assets import SensorSpec
from forewarn.errors import InputError
from forewarn.storage.assets import (
    apply_assets,
    ensure_machine,
    ensure_sensor,
    machine_type_at,
    type_versions,
)

PLANT = """
currency = "EUR"

[[sites]]
id = "plant-a"
name = "Plant A"

[[lines]]
id = "a-press"
site = "plant-a"
name = "Press line"

[[machine_types]]
id = "hyd-pump"
name = "Hydraulic pump"
failure_modes = ["bearing", "seal"]

[machine_types.costs]
currency = "USD"
downtime_cost_per_h = 1200
repair_cost = 9000
planned_maintenance_cost = 1500
inspection_cost = 200

[[machine_types.sensors]]
name = "vibration"
unit = "mm/s"
min = 0
max = 50

[[machine_types.sensors]]
name = "oil_temp"
unit = "degC"
min = -20
max = 140

[[machines]]
id = "pump-01"
site = "plant-a"
line = "a-press"
type = "hyd-pump"

[[machines]]
id = "pump-02"
site = "plant-a"
type = "hyd-pump"
"""

T0 = datetime(2026, 3, 1, tzinfo=UTC)
T1 = datetime(2026, 6, 1, tzinfo=UTC)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _count(db: psycopg.Connection, table: str) -> int:
    row = db.execute(f"select count(*) from {table}").fetchone()
    assert row is not None
    return int(row[0])


def test_toml_import_creates_then_reimport_changes_nothing(
    db: psycopg.Connection, tmp_path: Path
) -> None:
    doc = parse_asset_file(_write(tmp_path, "plant.toml", PLANT))
    first = apply_assets(db, doc, actor="test", now=T0)
    assert first.created == {
        "sites": ["plant-a"],
        "lines": ["a-press"],
        "machine_types": ["hyd-pump"],
        "machines": ["pump-01", "pump-02"],
    }
    again = apply_assets(db, doc, actor="test", now=T1)
    assert again.created == {} and again.updated == {}
    assert again.unchanged == {"sites": 1, "lines": 1, "machine_types": 1, "machines": 2}
    row = db.execute(
        "select currency, repair_cost, sensors from machine_types where id = 'hyd-pump'"
    ).fetchone()
    assert row is not None and row[0] == "USD" and row[1] == 9000.0
    assert [s["name"] for s in row[2]] == ["vibration", "oil_temp"]
    audit = db.execute("select count(*) from audit_log where action = 'assets.apply'").fetchone()
    assert audit is not None and audit[0] == 2


def test_bounds_and_type_changes_are_versioned(db: psycopg.Connection, tmp_path: Path) -> None:
    apply_assets(db, parse_asset_file(_write(tmp_path, "a.toml", PLANT)), actor="t", now=T0)
    wider = PLANT.replace("max = 50", "max = 80")
    wider += """
[[machine_types]]
id = "big-pump"
name = "Big pump"
[[machine_types.sensors]]
name = "vibration"
unit = "mm/s"
min = 0
max = 120
"""
    wider = wider.replace('id = "pump-02"\nsite = "plant-a"\ntype = "hyd-pump"',
                          'id = "pump-02"\nsite = "plant-a"\ntype = "big-pump"')  # fmt: skip
    changes = apply_assets(
        db, parse_asset_file(_write(tmp_path, "b.toml", wider)), actor="t", now=T1
    )
    assert changes.updated == {"machine_types": ["hyd-pump"], "machines": ["pump-02"]}
    versions = type_versions(db, "hyd-pump")
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["valid_from"] == T1
    # a reading from before the change keeps the bounds it was taken under; a later one the new
    before = machine_type_at(db, "pump-01", datetime(2026, 4, 1, tzinfo=UTC))
    after = machine_type_at(db, "pump-01", datetime(2026, 7, 1, tzinfo=UTC))
    assert before is not None and after is not None
    assert before.sensor("vibration").max == 50.0  # type: ignore[union-attr]
    assert after.sensor("vibration").max == 80.0  # type: ignore[union-attr]
    # pump-02 was a hyd-pump before T1 and is a big-pump since
    old = machine_type_at(db, "pump-02", datetime(2026, 4, 1, tzinfo=UTC))
    new = machine_type_at(db, "pump-02", datetime(2026, 7, 1, tzinfo=UTC))
    assert old is not None and old.id == "hyd-pump"
    assert new is not None and new.id == "big-pump"


def test_bad_reference_applies_nothing(db: psycopg.Connection, tmp_path: Path) -> None:
    bad = PLANT + '\n[[machines]]\nid = "pump-03"\nsite = "plant-a"\ntype = "no-such-type"\n'
    with pytest.raises(InputError, match=r"machines\[2\] \(id 'pump-03'\)\.type: unknown machine"):
        apply_assets(db, parse_asset_file(_write(tmp_path, "c.toml", bad)), actor="t", now=T0)
    db.rollback()
    assert _count(db, "sites") == 0 and _count(db, "machines") == 0
    assert _count(db, "machine_types") == 0


def test_toml_errors_name_the_item_and_field(tmp_path: Path) -> None:
    bad = PLANT.replace("min = -20", "min = 200")
    with pytest.raises(InputError, match=r"machine_types\[0\] \(id 'hyd-pump'\)\.sensors\[1\]"):
        parse_asset_file(_write(tmp_path, "d.toml", bad))
    with pytest.raises(InputError, match=r"currency"):
        parse_asset_file(_write(tmp_path, "e.toml", PLANT.replace('"USD"', '"dollars"')))


CSV = """site,line,machine,type,type_name,sensor,unit,min,max,failure_modes,currency,repair_cost
plant-b,b-l1,fan-01,fan,Cooling fan,speed,rpm,0,3000,bearing;imbalance,EUR,500
plant-b,b-l1,fan-01,fan,,current,A,0,40,,,
plant-b,b-l1,fan-02,fan,,speed,rpm,0,3000,,,
"""


def test_csv_one_row_per_sensor(db: psycopg.Connection, tmp_path: Path) -> None:
    doc = parse_asset_file(_write(tmp_path, "assets.csv", CSV))
    assert [m.id for m in doc.machines] == ["fan-01", "fan-02"]
    assert [s.name for s in doc.machine_types[0].sensors] == ["speed", "current"]
    assert doc.machine_types[0].failure_modes == ["bearing", "imbalance"]
    changes = apply_assets(db, doc, actor="t", now=T0)
    assert changes.created["machines"] == ["fan-01", "fan-02"]


def test_csv_errors_name_row_and_field(tmp_path: Path) -> None:
    bad_number = CSV.replace("0,40", "0,forty")
    with pytest.raises(InputError, match=r"row 3, field 'max'"):
        parse_asset_file(_write(tmp_path, "a.csv", bad_number))
    clash = CSV.replace(
        "plant-b,b-l1,fan-02,fan,,speed,rpm,0,3000", "plant-b,b-l1,fan-02,fan,,speed,rpm,0,4000"
    )
    with pytest.raises(InputError, match=r"row 4, field 'max'.*row 2"):
        parse_asset_file(_write(tmp_path, "b.csv", clash))
    with pytest.raises(InputError, match=r"row 2, field 'colour': unknown column"):
        parse_asset_file(_write(tmp_path, "c.csv", "site,type,colour\ns,t,red\n"))


def test_ensure_machine_and_sensor_for_gateways(db: psycopg.Connection, tmp_path: Path) -> None:
    apply_assets(db, parse_asset_file(_write(tmp_path, "a.toml", PLANT)), actor="t", now=T0)
    assert ensure_machine(db, "edge-7", site_id="site-x", type_id="hyd-pump", actor="sp", now=T1)
    assert not ensure_machine(
        db, "edge-7", site_id="site-x", type_id="hyd-pump", actor="sp", now=T1
    )
    spec = SensorSpec("flow", "l/min", 0.0, 500.0)
    assert ensure_sensor(db, "hyd-pump", spec, actor="sp", now=T1)
    assert not ensure_sensor(db, "hyd-pump", spec, actor="sp", now=T1)
    assert [v["version"] for v in type_versions(db, "hyd-pump")] == [1, 2]


def test_cli_import_export_roundtrip_and_schema(db_url: str, tmp_path: Path) -> None:
    env = {"FOREWARN_DB__URL": db_url, "FOREWARN_LOG_LEVEL": "WARNING", "PATH": "/usr/bin:/bin"}
    cli = [sys.executable, "-m", "forewarn"]
    src = _write(tmp_path, "plant.toml", PLANT)
    out = subprocess.run(
        [*cli, "assets", "import", str(src), "--json"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["created"]["machines"] == ["pump-01", "pump-02"]
    exported = subprocess.run(
        [*cli, "assets", "export"], env=env, capture_output=True, text=True, check=True
    ).stdout
    again = subprocess.run(
        [*cli, "assets", "import", str(_write(tmp_path, "exported.toml", exported)), "--json"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(again.stdout)["updated"] == {}  # the export says exactly what is stored
    bad = subprocess.run(
        [*cli, "assets", "import", str(_write(tmp_path, "bad.csv", "site,type\n,x\n"))],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 2 and "row 2, field 'site'" in bad.stderr
    assert "Traceback" not in bad.stderr
    schema = json.loads(
        subprocess.run(
            [*cli, "assets", "schema"], env=env, capture_output=True, text=True, check=True
        ).stdout
    )
    assert schema["title"] == "Forewarn asset file"
    assert {"sites", "lines", "machine_types", "machines"} <= set(schema["properties"])
    sensor = schema["$defs"]["SensorIn"]
    assert sensor["required"] == ["name", "unit", "min", "max"]

"""Bring your own plant, end to end, on two public datasets treated as a customer's exports.

AI4I 2020 and the C-MAPSS FD001 training units are written to files shaped like what a plant
would hand over -- an asset list (CSV, one row per sensor), a wide historian export of the
turbofans with tag names, local timestamps and a mapping file, a long (tag/value) historian export
of the mills with a different delimiter, and a CMMS work-order log with breakdowns -- then go
through the generic commands only (`forewarn assets import`, `forewarn import readings|events`,
`forewarn train`, `forewarn backtest`). The last part of some machines' lives is held back: it is
not in the files. It is then replayed live over MQTT (the real Mosquitto) through the ingest
pipeline, scored and run through the alert engine hour by hour, and the predictions and alerts
for the replayed machines are checked. The turbofans in the replay are in their last
``HELD_CYCLES`` cycles before failure (the dataset's run-to-failure truth), so they are the ones
an alert should find; the models never saw those cycles.

Subsets keep the wall time modest: 14 completed + 5 live turbofans, 4 mills of 400 AI4I rows;
the live part goes in steps of STEP_H plant hours.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from forewarn.clock import now_on
from forewarn.contract import Telemetry, encode, topic_for
from forewarn.settings import load_settings
from models.runners.alerting import run_alerting_once
from models.runners.datasets import default_data_dir
from models.runners.scoring import ScoringState, score_once
from tests.integration.ingest_support import Publisher, running, wait_until

pytestmark = pytest.mark.byo

DATA = default_data_dir()
CMAPSS = DATA / "cmapss" / "train_FD001.txt.gz"
AI4I = DATA / "ai4i2020" / "ai4i2020.csv"

T_NOW = datetime(2026, 6, 1, tzinfo=UTC)  # the end of the exported history
COMPLETED, LIVE = 14, 5  # turbofan units run to failure in the history / still running
HELD_CYCLES = 24  # the last cycles of each live unit: not exported, replayed over MQTT
MILLS, MILL_ROWS, MILL_HELD = 4, 400, 12  # AI4I rows per mill; the last MILL_HELD are replayed
MILL_ROW_H = 2.0  # each AI4I row is one two-hour job on the mill
PARIS = "Europe/Paris"
STEP_H = 3  # plant hours published between two scoring and alerting passes

# C-MAPSS sensor columns (1-based index in the 21) -> historian tag, registry sensor, unit, bounds
ENGINE_TAGS = (
    (2, "LPC.T24", "t24", "degR", 600.0, 700.0),
    (3, "HPC.T30", "t30", "degR", 1500.0, 1700.0),
    (4, "LPT.T50", "t50", "degR", 1300.0, 1500.0),
    (7, "HPC.P30", "p30", "psia", 500.0, 600.0),
    (8, "FAN.Nf", "nf", "rpm", 2300.0, 2500.0),
    (9, "CORE.Nc", "nc", "rpm", 8900.0, 9300.0),
    (11, "HPC.Ps30", "ps30", "psia", 40.0, 55.0),
    (12, "FUEL.phi", "phi", "pps/psi", 500.0, 560.0),
    (13, "FAN.NRf", "nrf", "rpm", 2300.0, 2500.0),
    (14, "CORE.NRc", "nrc", "rpm", 8000.0, 8300.0),
    (15, "BPR", "bpr", "-", 8.0, 9.0),
    (17, "BLEED.htBleed", "htbleed", "-", 380.0, 410.0),
    (20, "HPT.W31", "w31", "lbm/s", 36.0, 41.0),
    (21, "LPT.W32", "w32", "lbm/s", 21.0, 25.0),
)
MILL_TAGS = (
    ("Air temperature [K]", "AIR_T", "air_temp", "K", 290.0, 310.0),
    ("Process temperature [K]", "PROC_T", "process_temp", "K", 300.0, 320.0),
    ("Rotational speed [rpm]", "SPINDLE", "speed", "rpm", 1000.0, 3000.0),
    ("Torque [Nm]", "TORQUE", "torque", "Nm", 0.0, 100.0),
    ("Tool wear [min]", "TOOL_WEAR", "tool_wear", "min", 0.0, 300.0),
)
MILL_MODES = (("TWF", "tool_wear"), ("HDF", "heat"), ("PWF", "power"), ("OSF", "overstrain"))


def _engine(unit: int) -> str:
    return f"ENG-{unit:03d}"


def _mill(i: int) -> str:
    return f"MILL-{i + 1:02d}"


# ---- the customer's files ---------------------------------------------------------------------


def _cmapss_units() -> dict[int, list[list[float]]]:
    units: dict[int, list[list[float]]] = {}
    with gzip.open(CMAPSS, "rt") as f:
        for line in f:
            if line.strip():
                r = [float(x) for x in line.split()]
                units.setdefault(int(r[0]), []).append(r)
    return units


def _engine_times(units: dict[int, list[list[float]]]) -> dict[int, list[datetime]]:
    """One cycle per hour. Completed units failed one after another before T_NOW - 7 days; the
    live ones are mid-life at T_NOW, HELD_CYCLES cycles before their failure."""
    times: dict[int, list[datetime]] = {}
    for i, unit in enumerate(range(1, COMPLETED + 1)):
        n = len(units[unit])
        last = T_NOW - timedelta(hours=170 + 36 * i)
        times[unit] = [last - timedelta(hours=n - c) for c in range(1, n + 1)]
    for unit in range(COMPLETED + 1, COMPLETED + LIVE + 1):
        n = len(units[unit])
        times[unit] = [T_NOW + timedelta(hours=c - (n - HELD_CYCLES)) for c in range(1, n + 1)]
    return times


def _ai4i_rows() -> list[dict[str, str]]:
    with AI4I.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))[: MILLS * MILL_ROWS]


def _mill_time(j: int) -> datetime:
    """Row j (0-based) of a mill: the last exported row ends at T_NOW."""
    return T_NOW + timedelta(hours=MILL_ROW_H * (j - (MILL_ROWS - MILL_HELD - 1)))


def write_exports(tmp: Path) -> dict[str, Path]:
    units = _cmapss_units()
    times = _engine_times(units)
    ai4i = _ai4i_rows()
    files = {
        "assets": tmp / "assets.csv",
        "engines": tmp / "turbofan_historian.csv",
        "engines_map": tmp / "turbofan_mapping.toml",
        "mills": tmp / "mill_historian.csv",
        "mills_map": tmp / "mill_mapping.toml",
        "cmms": tmp / "cmms_workorders.csv",
        "cmms_map": tmp / "cmms_mapping.toml",
    }
    with files["assets"].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["site", "line", "machine", "type", "type_name", "sensor", "unit", "min", "max",
                    "failure_modes", "currency", "downtime_cost_per_h", "repair_cost",
                    "planned_maintenance_cost", "inspection_cost", "repair_hours",
                    "planned_hours"])  # fmt: skip
        engines = [_engine(u) for u in range(1, COMPLETED + LIVE + 1)]
        for k, (_, _, name, unit, lo, hi) in enumerate(ENGINE_TAGS):
            cost = ["hpc", "EUR", 5000, 40000, 6000, 800, 24, 6] if k == 0 else [""] * 8
            w.writerow(["test-cells", "cells-1", engines[0], "turbofan", "Turbofan", name, unit,
                        lo, hi, *cost])  # fmt: skip
        for m in engines[1:]:
            w.writerow(["test-cells", "cells-1", m, "turbofan", "", "", "", "", "", *[""] * 8])
        for k, (_, _, name, unit, lo, hi) in enumerate(MILL_TAGS):
            cost = ["tool_wear;heat;power;overstrain;random", "EUR", 800, 2500, 400, 100, 6, 1.5]
            w.writerow(["machining", "mach-1", _mill(0), "mill", "CNC mill", name, unit, lo, hi,
                        *(cost if k == 0 else [""] * 8)])  # fmt: skip
        for i in range(1, MILLS):
            w.writerow(["machining", "mach-1", _mill(i), "mill", "", "", "", "", "", *[""] * 8])

    # wide turbofan export: local Paris time, day-first, historian tag names as columns
    with files["engines"].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Asset", "Timestamp", *[tag for _, tag, *_ in ENGINE_TAGS]])
        for unit in range(1, COMPLETED + LIVE + 1):
            rows = units[unit]
            keep = len(rows) - (HELD_CYCLES if unit > COMPLETED else 0)
            for r, ts in zip(rows[:keep], times[unit][:keep], strict=True):
                local = ts.astimezone(_zone(PARIS)).strftime("%d/%m/%Y %H:%M:%S")
                w.writerow([_engine(unit), local, *[r[4 + idx] for idx, *_ in ENGINE_TAGS]])
    mapping = "\n".join(f'"{tag}" = "{name}"' for _, tag, name, *_ in ENGINE_TAGS)
    files["engines_map"].write_text(
        'shape = "wide"\nmachine = "Asset"\nts = "Timestamp"\n'
        f'ts_format = "%d/%m/%Y %H:%M:%S"\ntimezone = "{PARIS}"\n\n[sensors]\n{mapping}\n'
    )

    # long mill export: one row per tag and job, ';'-separated, UTC with an offset
    with files["mills"].open("w", newline="") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(["Machine", "Tag", "Time", "Value"])
        for i in range(MILLS):
            for j in range(MILL_ROWS - MILL_HELD):
                row = ai4i[i * MILL_ROWS + j]
                ts = _mill_time(j).isoformat()
                for col, tag, *_ in MILL_TAGS:
                    w.writerow([_mill(i), tag, ts, row[col]])
    mapping = "\n".join(f'"{tag}" = "{name}"' for _, tag, name, *_ in MILL_TAGS)
    files["mills_map"].write_text(
        'shape = "long"\nmachine = "Machine"\nsensor = "Tag"\nts = "Time"\nvalue = "Value"\n'
        f'delimiter = ";"\n\n[sensors]\n{mapping}\n'
    )

    # the CMMS log: a breakdown per completed engine (repaired in a day) and per failed AI4I job
    with files["cmms"].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Order", "Equipment", "Reported", "Completed", "Order type", "Damage code",
                    "Total cost"])  # fmt: skip
        n = 0
        for unit in range(1, COMPLETED + 1):
            n += 1
            fail = times[unit][-1] + timedelta(minutes=30)
            w.writerow([f"WO-{n}", _engine(unit), _local(fail), _local(fail + timedelta(hours=24)),
                        "ZM01", "hpc", 160000])  # fmt: skip
        for i in range(MILLS):
            for j in range(MILL_ROWS - MILL_HELD):
                row = ai4i[i * MILL_ROWS + j]
                if row["Machine failure"] != "1":
                    continue
                mode = next((m for flag, m in MILL_MODES if row[flag] == "1"), "random")
                fail = _mill_time(j) + timedelta(minutes=10)
                n += 1
                w.writerow([f"WO-{n}", _mill(i), _local(fail), _local(fail + timedelta(hours=1)),
                            "ZM01", mode, 3300])  # fmt: skip
    files["cmms_map"].write_text(
        'machine = "Equipment"\nstart = "Reported"\nend = "Completed"\nkind = "Order type"\n'
        'failure_mode = "Damage code"\ncost = "Total cost"\nwork_order = "Order"\n'
        f'ts_format = "%Y-%m-%d %H:%M"\ntimezone = "{PARIS}"\n\n'
        '[kinds]\nZM01 = "failure"\nZM02 = "preventive"\n'
    )
    return files


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _local(ts: datetime) -> str:
    return ts.astimezone(_zone(PARIS)).strftime("%Y-%m-%d %H:%M")


# ---- the test ---------------------------------------------------------------------------------


def _cli(env: dict[str, str], *args: str) -> dict[str, Any] | list[Any]:
    out = subprocess.run(
        [sys.executable, "-m", "forewarn", *args], env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, f"forewarn {' '.join(args)} failed:\n{out.stderr[-3000:]}"
    parsed: dict[str, Any] | list[Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return parsed


def _replay_messages(root: str) -> list[tuple[datetime, str, bytes]]:
    """The held-back part, as a gateway would publish it: (ts, topic, contract payload)."""
    units = _cmapss_units()
    times = _engine_times(units)
    out = []
    for unit in range(COMPLETED + 1, COMPLETED + LIVE + 1):
        for r, ts in list(zip(units[unit], times[unit], strict=True))[-HELD_CYCLES:]:
            values = {name: r[4 + idx] for idx, _, name, *_ in ENGINE_TAGS}
            seq = int(ts.timestamp() * 1000)
            msg = Telemetry("test-cells", _engine(unit), ts, seq, values)
            out.append((ts, topic_for("test-cells", _engine(unit), "telemetry", root), encode(msg)))
    ai4i = _ai4i_rows()
    for i in range(MILLS):
        for j in range(MILL_ROWS - MILL_HELD, MILL_ROWS):
            row, ts = ai4i[i * MILL_ROWS + j], _mill_time(j)
            values = {name: float(row[col]) for col, _, name, *_ in MILL_TAGS}
            msg = Telemetry("machining", _mill(i), ts, int(ts.timestamp() * 1000), values)
            out.append((ts, topic_for("machining", _mill(i), "telemetry", root), encode(msg)))
    return sorted(out, key=lambda m: (m[0], m[1]))


def test_own_plant_from_exports_to_live_alerts(
    db_url: str, mqtt_url: str, topic_root: str, tmp_path: Path
) -> None:
    for path in (CMAPSS, AI4I):
        if not path.exists():
            pytest.skip(f"dataset not found at {path}: set FOREWARN_DATA_DIR to ../shared/data")
    files = write_exports(tmp_path)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FOREWARN_")},
        "FOREWARN_DB__URL": db_url,
        "FOREWARN_LOG_LEVEL": "WARNING",
    }

    # 1. assets, history and the failure log, through the generic commands
    assets = _cli(env, "assets", "import", str(files["assets"]), "--json")
    assert isinstance(assets, dict)
    assert len(assets["created"]["machines"]) == COMPLETED + LIVE + MILLS
    engines = _cli(env, "import", "readings", str(files["engines"]), "--mapping",
                   str(files["engines_map"]), "--json")  # fmt: skip
    assert isinstance(engines, dict)
    assert engines["rejected"] == 0 and engines["stored"] == engines["rows"] > 3000
    assert engines["last_ts"] == T_NOW.isoformat()  # Paris local time read as such
    mills = _cli(env, "import", "readings", str(files["mills"]), "--mapping",
                 str(files["mills_map"]), "--json")  # fmt: skip
    assert isinstance(mills, dict)
    assert mills["shape"] == "long" and mills["rejected"] == 0
    assert mills["stored"] == MILLS * (MILL_ROWS - MILL_HELD) * len(MILL_TAGS)
    events = _cli(env, "import", "events", str(files["cmms"]), "--mapping",
                  str(files["cmms_map"]), "--json")  # fmt: skip
    assert isinstance(events, dict) and events["rejected"] == 0
    again = _cli(env, "import", "readings", str(files["engines"]), "--mapping",
                 str(files["engines_map"]), "--json")  # fmt: skip
    assert isinstance(again, dict) and again["stored"] == 0
    assert again["duplicates"] == engines["stored"]

    # 2. train on that history, and backtest it out of sample
    trained = _cli(env, "train", "--json")
    assert isinstance(trained, list)
    by_type = {r["type"]: r for r in trained}
    assert set(by_type) == {"turbofan", "mill"}
    assert all(r["alias"] == "champion" for r in trained)
    # failure within 48 cycles on engines the model did not train on (held-out machines)
    assert by_type["turbofan"]["metrics"]["roc_auc"] > 0.85
    bt = _cli(env, "backtest", "--json", "--no-curve")
    assert isinstance(bt, dict)
    assert bt["policies"]["run-to-failure"]["failures"] > 0
    assert "turbofan" in bt["history"]["models"]

    # 3. the held-back part, live over MQTT, STEP_H hours at a time: ingest -> score -> alert
    settings = load_settings(
        db={"url": db_url},
        mqtt={"topic_root": topic_root, "keepalive_s": 10},
        ingest={"metrics_port": 0, "flush_interval_s": 0.05},
    )
    messages = _replay_messages(topic_root)
    state = ScoringState()
    pub = Publisher(mqtt_url)
    stored = 0
    try:
        with (
            running(settings, db_url, mqtt_url, client_id=f"byo-{uuid.uuid4().hex[:8]}"),
            psycopg.connect(db_url, autocommit=True) as conn,
        ):
            hour = T_NOW
            while hour <= messages[-1][0]:
                hour += timedelta(hours=STEP_H)
                step = timedelta(hours=STEP_H)
                batch = [(t, p) for ts, t, p in messages if hour - step < ts <= hour]
                if not batch:
                    continue
                pub.publish(batch)
                stored += len(batch)
                wait_until(
                    lambda n=stored: _live_readings(conn) >= n,  # type: ignore[misc]
                    timeout_s=60,
                    what="ingest to store",
                )
                score_once(conn, settings, state)
                run_alerting_once(conn, settings, now_on(conn, "plant"))
            dead = conn.execute("select count(*), min(reason) from dead_letters").fetchone()
            assert dead is not None and dead[0] == 0, f"dead letters: {dead}"
            preds = dict(
                conn.execute(
                    "select machine_id, count(*) from predictions where role = 'champion'"
                    " and ts >= %s group by 1",
                    (T_NOW,),
                ).fetchall()
            )
            alerts = conn.execute(
                "select machine_id, failure_prob, ttf_h from alerts order by created_at"
            ).fetchall()
    finally:
        pub.close()
    live_engines = {_engine(u) for u in range(COMPLETED + 1, COMPLETED + LIVE + 1)}
    replayed = live_engines | {_mill(i) for i in range(MILLS)}
    # every replayed machine was scored from its live data, step after step
    assert set(preds) == replayed
    assert all(preds[m] >= HELD_CYCLES // STEP_H - 2 for m in replayed), preds
    # the engines in their last cycles before failure are alerted; nothing else is alerted
    alerted = {a[0] for a in alerts}
    assert alerted <= replayed
    assert len(alerted & live_engines) >= LIVE - 1, f"alerts: {alerts}"


def _live_readings(conn: psycopg.Connection) -> int:
    row = conn.execute("select count(*) from readings where ts > %s", (T_NOW,)).fetchone()
    return int(row[0]) if row else 0

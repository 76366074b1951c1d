"""Replay public datasets as message streams, so real data flows through the same pipeline.

* NASA C-MAPSS: every training unit of a subset becomes machine ``cmapss-fd001-007`` (site
  ``cmapss``), one telemetry message per cycle (sensors ``s1``..``s21``, operating settings
  ``setting1``..``setting3``, ``regime`` = nearest of the six published operating conditions), and a
  failure event after its last cycle (mode ``hpc`` for FD001/FD002; FD003/FD004 do not say which of
  HPC or fan failed, so ``hpc_or_fan``).
* AI4I 2020: the file is one mill's process log in UDI order (tool wear grows and resets), so it
  becomes one machine ``ai4i-001`` (site ``ai4i``) with a telemetry message per row (sensors named as
  the simulator's ``cnc`` type, product quality L/M/H as ``settings.quality`` 0/1/2) and a failure
  event after each row with ``Machine failure`` = 1 (mode from TWF/HDF/PWF/OSF/RNF, else ``unknown``).

:func:`replay_registry` gives the asset registry for those machines (ingest registers it first).
The datasets are read in place, never copied.
"""

from __future__ import annotations

import csv
import gzip
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from forewarn.assets import AssetRegistry, Costs, Line, Machine, MachineType, SensorSpec, Site
from forewarn.contract import Event, Message, Telemetry
from forewarn.errors import ForewarnError

DATA_DIR_ENV = "FOREWARN_DATA_DIR"
REPLAY_START = datetime(2026, 1, 1, tzinfo=UTC)
CMAPSS_CYCLE_S = 3600.0  # one cycle (flight) per simulated hour
AI4I_ROW_S = 300.0  # one AI4I process per 5 simulated minutes
CMAPSS_SUBSETS = ("FD001", "FD002", "FD003", "FD004")
# Physical bounds that cover all four subsets (FD002/FD004 fly at altitude: lower T, P).
CMAPSS_SENSORS: tuple[tuple[str, str, float, float], ...] = (
    ("s1", "degR", 400.0, 560.0),
    ("s2", "degR", 500.0, 700.0),
    ("s3", "degR", 1200.0, 1700.0),
    ("s4", "degR", 1000.0, 1550.0),
    ("s5", "psia", 3.0, 16.0),
    ("s6", "psia", 5.0, 23.0),
    ("s7", "psia", 120.0, 600.0),
    ("s8", "rpm", 1900.0, 2400.0),
    ("s9", "rpm", 7900.0, 9400.0),
    ("s10", "-", 0.9, 1.4),
    ("s11", "psia", 34.0, 50.0),
    ("s12", "pps/psi", 120.0, 560.0),
    ("s13", "rpm", 2000.0, 2400.0),
    ("s14", "rpm", 7800.0, 8400.0),
    ("s15", "-", 8.0, 11.5),
    ("s16", "-", 0.015, 0.035),
    ("s17", "-", 290.0, 410.0),
    ("s18", "rpm", 1900.0, 2400.0),
    ("s19", "%", 80.0, 101.0),
    ("s20", "lbm/s", 8.0, 42.0),
    ("s21", "lbm/s", 5.0, 26.0),
)
# The six operating conditions of FD002/FD004 (altitude kft, Mach, throttle resolver angle).
CMAPSS_CONDITIONS = (
    (0.0, 0.0, 100.0),
    (10.0, 0.25, 100.0),
    (20.0, 0.7, 100.0),
    (25.0, 0.62, 60.0),
    (35.0, 0.84, 100.0),
    (42.0, 0.84, 100.0),
)
AI4I_COLUMNS = (
    ("air_temp", "Air temperature [K]", "K", 250.0, 350.0),
    ("process_temp", "Process temperature [K]", "K", 250.0, 360.0),
    ("rotational_speed", "Rotational speed [rpm]", "rpm", 0.0, 3500.0),
    ("torque", "Torque [Nm]", "Nm", 0.0, 120.0),
    ("tool_wear", "Tool wear [min]", "min", 0.0, 400.0),
)
AI4I_MODES = (
    ("TWF", "tool_wear"),
    ("HDF", "heat"),
    ("PWF", "power"),
    ("OSF", "overstrain"),
    ("RNF", "random"),
)
AI4I_QUALITY = {"L": 0.0, "M": 1.0, "H": 2.0}
AI4I_MACHINE = "ai4i-001"
REPLAY_COSTS = Costs(
    downtime_cost_per_h=5000.0,
    repair_cost=40000.0,
    planned_maintenance_cost=6000.0,
    inspection_cost=800.0,
    repair_hours=24.0,
    planned_hours=6.0,
)
AI4I_COSTS = Costs(
    downtime_cost_per_h=800.0,
    repair_cost=2500.0,
    planned_maintenance_cost=400.0,
    inspection_cost=100.0,
    repair_hours=6.0,
    planned_hours=1.5,
)


class DatasetMissing(ForewarnError):
    """A replay dataset is not where we were told to look."""


def default_data_dir() -> Path:
    """``$FOREWARN_DATA_DIR`` or ``../shared/data`` beside the checkout."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _cmapss_file(data: Path, subset: str) -> Path:
    for base in (data, data / "cmapss"):
        for name in (f"train_{subset}.txt", f"train_{subset}.txt.gz"):
            if (base / name).is_file():
                return base / name
    raise DatasetMissing(f"train_{subset}.txt[.gz] not found in {data} or {data / 'cmapss'}")


def _check_subset(subset: str) -> str:
    s = subset.upper()
    if s not in CMAPSS_SUBSETS:
        raise ForewarnError(f"unknown C-MAPSS subset {subset!r}; expected one of {CMAPSS_SUBSETS}")
    return s


def read_cmapss(data: Path, subset: str) -> list[list[float]]:
    """Rows of a C-MAPSS training file: unit, cycle, 3 settings, 21 sensors (whitespace separated)."""
    path = _cmapss_file(data, _check_subset(subset))
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        rows = [[float(x) for x in line.split()] for line in f if line.strip()]
    bad = [i for i, r in enumerate(rows) if len(r) != 26]
    if bad:
        raise DatasetMissing(
            f"{path}: line {bad[0] + 1} has {len(rows[bad[0]])} columns, expected 26"
        )
    return rows


def cmapss_machine(subset: str, unit: int) -> str:
    return f"cmapss-{subset.lower()}-{unit:03d}"


def _regime(s1: float, s2: float, s3: float) -> int:
    return min(
        range(len(CMAPSS_CONDITIONS)),
        key=lambda i: (
            ((CMAPSS_CONDITIONS[i][0] - s1) / 42.0) ** 2
            + (CMAPSS_CONDITIONS[i][1] - s2) ** 2
            + ((CMAPSS_CONDITIONS[i][2] - s3) / 100.0) ** 2
        ),
    )


def cmapss_messages(
    data: Path, subset: str, *, start: datetime = REPLAY_START, cycle_s: float = CMAPSS_CYCLE_S
) -> Iterator[Message]:
    """Every training cycle as telemetry, plus a failure event after each unit's last cycle."""
    subset = _check_subset(subset)
    rows = read_cmapss(data, subset)
    last: dict[int, int] = {}
    for r in rows:
        last[int(r[0])] = max(last.get(int(r[0]), 0), int(r[1]))
    mode = "hpc" if subset in ("FD001", "FD002") else "hpc_or_fan"
    names = [s[0] for s in CMAPSS_SENSORS]
    # time order: cycle by cycle, units in order; a unit's failure comes half a cycle after its
    # last one, i.e. after every unit's telemetry of that cycle
    pending: list[Event] = []
    for r in sorted(rows, key=lambda r: (r[1], r[0])):
        unit, cycle = int(r[0]), int(r[1])
        ts = start + timedelta(seconds=cycle * cycle_s)
        if pending and pending[0].ts < ts:
            yield from pending
            pending = []
        machine = cmapss_machine(subset, unit)
        yield Telemetry(
            "cmapss",
            machine,
            ts,
            cycle,
            dict(zip(names, r[5:], strict=True)),
            _regime(r[2], r[3], r[4]),
            {"setting1": r[2], "setting2": r[3], "setting3": r[4]},
        )
        if cycle == last[unit]:
            pending.append(
                Event(
                    "cmapss",
                    machine,
                    ts + timedelta(seconds=cycle_s / 2),
                    cycle + 1,
                    "failure",
                    mode=mode,
                    detail={"dataset": f"cmapss/{subset}", "cycles": cycle},
                )
            )
    yield from pending


def _ai4i_path(data: Path) -> Path:
    for p in (data, data / "ai4i2020.csv", data / "ai4i2020" / "ai4i2020.csv"):
        if p.is_file():
            return p
    raise DatasetMissing(f"ai4i2020.csv not found at {data}")


def read_ai4i(data: Path) -> list[dict[str, str]]:
    path = _ai4i_path(data)
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "Torque [Nm]" not in rows[0]:
        raise DatasetMissing(f"{path} is not the AI4I 2020 file")
    return rows


def ai4i_messages(
    data: Path, *, start: datetime = REPLAY_START, row_s: float = AI4I_ROW_S
) -> Iterator[Message]:
    """One telemetry message per AI4I row, a failure event after each failed process."""
    seq = 0
    for row in sorted(read_ai4i(data), key=lambda r: int(r["UDI"])):
        seq += 1
        ts = start + timedelta(seconds=int(row["UDI"]) * row_s)
        values: dict[str, float | None] = {n: float(row[col]) for n, col, *_ in AI4I_COLUMNS}
        yield Telemetry(
            "ai4i",
            AI4I_MACHINE,
            ts,
            seq,
            values,
            None,
            {"quality": AI4I_QUALITY.get(row["Type"], 0.0)},
        )
        if row["Machine failure"] == "1":
            flags = [flag for flag, _ in AI4I_MODES if row[flag] == "1"]
            mode = next((m for flag, m in AI4I_MODES if row[flag] == "1"), "unknown")
            seq += 1
            yield Event(
                "ai4i",
                AI4I_MACHINE,
                ts + timedelta(seconds=1),
                seq,
                "failure",
                mode=mode,
                detail={"dataset": "ai4i2020", "udi": int(row["UDI"]), "flags": flags},
            )


def replay_registry(dataset: str, data: Path, subset: str = "FD001") -> AssetRegistry:
    """The asset registry of a replay (``dataset`` = "cmapss" or "ai4i")."""
    if dataset == "cmapss":
        subset = _check_subset(subset)
        units = sorted({int(r[0]) for r in read_cmapss(data, subset)})
        ttype = MachineType(
            "cmapss_turbofan",
            "C-MAPSS turbofan (replay)",
            tuple(SensorSpec(*s) for s in CMAPSS_SENSORS),
            ("hpc", "fan", "hpc_or_fan"),
            REPLAY_COSTS,
        )
        return AssetRegistry(
            sites=[Site("cmapss", "C-MAPSS replay")],
            lines=[Line("cmapss-l1", "cmapss", "Test cells")],
            types=[ttype],
            machines=[
                Machine(cmapss_machine(subset, u), "cmapss", "cmapss-l1", ttype.id) for u in units
            ],
        )
    if dataset == "ai4i":
        _ai4i_path(data)
        ttype = MachineType(
            "ai4i_mill",
            "AI4I 2020 mill (replay)",
            tuple(SensorSpec(n, unit, lo, hi) for n, _, unit, lo, hi in AI4I_COLUMNS),
            tuple(m for _, m in AI4I_MODES) + ("unknown",),
            AI4I_COSTS,
        )
        return AssetRegistry(
            sites=[Site("ai4i", "AI4I 2020 replay")],
            lines=[Line("ai4i-l1", "ai4i", "Machining")],
            types=[ttype],
            machines=[Machine(AI4I_MACHINE, "ai4i", "ai4i-l1", ttype.id)],
        )
    raise ForewarnError(f"unknown replay dataset {dataset!r}; expected cmapss or ai4i")

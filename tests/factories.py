"""Test data factories; each takes overrides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from forewarn.assets import AssetRegistry, Costs, Line, Machine, MachineType, SensorSpec, Site
from forewarn.contract import Event, Telemetry

PUMP_SENSORS = (
    SensorSpec("vibration_rms", "mm/s", 0.0, 50.0),
    SensorSpec("bearing_temp", "degC", -20.0, 150.0),
    SensorSpec("flow", "m3/h", 0.0, 500.0),
    SensorSpec("pressure", "bar", 0.0, 40.0),
)
COSTS = Costs(
    downtime_cost_per_h=1000.0,
    repair_cost=5000.0,
    planned_maintenance_cost=800.0,
    inspection_cost=150.0,
    repair_hours=12.0,
    planned_hours=2.0,
)


def make_registry(machines: int = 3, site: str = "s1", **overrides: Any) -> AssetRegistry:
    pump = MachineType("pump", "Centrifugal pump", PUMP_SENSORS, ("bearing", "random"), COSTS)
    reg = AssetRegistry(
        sites=[Site(site, "Site one")],
        lines=[Line(f"{site}-l1", site, "Line one")],
        types=[pump],
        machines=[
            Machine(f"{site}-pump-{i:03d}", site, f"{site}-l1", "pump") for i in range(machines)
        ],
    )
    for k, v in overrides.items():
        setattr(reg, k, v)
    return reg


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_telemetry(machine: str = "s1-pump-000", seq: int = 1, **overrides: Any) -> Telemetry:
    fields: dict[str, Any] = {
        "site": "s1",
        "machine": machine,
        "ts": T0 + timedelta(seconds=seq),
        "seq": seq,
        "values": {"vibration_rms": 2.0, "bearing_temp": 45.0, "flow": 120.0, "pressure": 6.0},
    }
    fields.update(overrides)
    return Telemetry(**fields)


def make_event(machine: str = "s1-pump-000", seq: int = 1, **overrides: Any) -> Event:
    fields: dict[str, Any] = {
        "site": "s1",
        "machine": machine,
        "ts": T0 + timedelta(seconds=seq),
        "seq": seq,
        "event": "failure",
        "mode": "bearing",
    }
    fields.update(overrides)
    return Event(**fields)

"""The asset registry's plain data: sites, lines, machine types with their sensors and costs, machines."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SensorSpec:
    name: str
    unit: str
    min: float
    max: float


@dataclass(frozen=True, slots=True)
class Costs:
    """Money per event and hours of downtime; the ROI and threshold maths read these."""

    downtime_cost_per_h: float
    repair_cost: float
    planned_maintenance_cost: float
    inspection_cost: float
    repair_hours: float
    planned_hours: float


@dataclass(frozen=True, slots=True)
class MachineType:
    id: str
    name: str
    sensors: tuple[SensorSpec, ...]
    failure_modes: tuple[str, ...]
    costs: Costs

    def sensor(self, name: str) -> SensorSpec | None:
        for s in self.sensors:
            if s.name == name:
                return s
        return None


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Line:
    id: str
    site_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Machine:
    id: str
    site_id: str
    line_id: str | None
    type_id: str


@dataclass(frozen=True, slots=True)
class MachineSpec:
    """What validation needs to know about one machine."""

    site_id: str
    type_id: str
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    failure_modes: frozenset[str] = frozenset()


@dataclass(slots=True)
class AssetRegistry:
    sites: list[Site]
    lines: list[Line]
    types: list[MachineType]
    machines: list[Machine]

    def specs(self) -> dict[str, MachineSpec]:
        """Machine id -> bounds per sensor, the lookup the message contract validates against."""
        types = {t.id: t for t in self.types}
        return {
            m.id: MachineSpec(
                site_id=m.site_id,
                type_id=m.type_id,
                bounds={s.name: (s.min, s.max) for s in types[m.type_id].sensors},
                failure_modes=frozenset(types[m.type_id].failure_modes),
            )
            for m in self.machines
        }

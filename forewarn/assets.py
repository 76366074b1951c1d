"""The asset registry's plain data: sites, lines, machine types with their sensors and costs, machines."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

# The first version of anything is valid from here (before any plant history; psycopg cannot
# load -infinity into a datetime).
BEGINNING = datetime(1900, 1, 1, tzinfo=UTC)


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
    """What validation needs to know about one machine, now and (through :meth:`at`) before.

    ``bounds``, ``type_id`` and ``failure_modes`` are those in effect since ``since`` (None: always).
    A reading taken before ``since`` is judged by the spec that was in effect at its time:
    ``earlier`` holds ``(valid_from, spec)`` of each older stretch, oldest first, so the common
    case (a reading of now) costs one comparison.
    """

    site_id: str
    type_id: str
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    failure_modes: frozenset[str] = frozenset()
    since: datetime | None = None
    earlier: tuple[tuple[datetime, MachineSpec], ...] = ()

    def at(self, ts: datetime) -> MachineSpec:
        """The spec in effect at ``ts`` (self for anything from ``since`` on)."""
        if self.since is None or ts >= self.since or not self.earlier:
            return self
        i = bisect_right(self.earlier, ts, key=lambda e: e[0]) - 1
        return self.earlier[max(i, 0)][1]


@dataclass(slots=True)
class AssetRegistry:
    sites: list[Site]
    lines: list[Line]
    types: list[MachineType]
    machines: list[Machine]

    def specs(self) -> dict[str, MachineSpec]:
        """Machine id -> bounds per sensor, the lookup the message contract validates against."""
        types = {t.id: t for t in self.types}
        return {m.id: spec_of(m.site_id, types[m.type_id]) for m in self.machines}


@dataclass(frozen=True, slots=True)
class TypeVersion:
    """One version of a machine type, valid from ``valid_from`` until the next one."""

    valid_from: datetime
    version: int
    type: MachineType


def stretches(
    assignments: Sequence[tuple[datetime, str]],
    versions: Mapping[str, Sequence[TypeVersion]],
) -> list[tuple[datetime, str, TypeVersion | None]]:
    """(valid_from, type id, version of that type) of each stretch of one machine's history.

    ``assignments`` are the machine's (valid_from, type id), oldest first; ``versions`` each type's
    versions, oldest first (None where a type has no version in effect: its current row holds).
    A new stretch starts wherever the machine's type or its type's version changes; of two changes
    at the same instant the later one holds.
    """
    out: list[tuple[datetime, str, TypeVersion | None]] = []
    for i, (start, type_id) in enumerate(assignments):
        end = assignments[i + 1][0] if i + 1 < len(assignments) else None
        vs = versions.get(type_id, ())
        before = [v for v in vs if v.valid_from <= start]
        out.append((start, type_id, before[-1] if before else None))
        out += [
            (v.valid_from, type_id, v)
            for v in vs
            if v.valid_from > start and (end is None or v.valid_from < end)
        ]
    merged: list[tuple[datetime, str, TypeVersion | None]] = []
    for s in out:
        if merged and merged[-1][0] == s[0]:
            merged[-1] = s
        else:
            merged.append(s)
    return merged


def spec_of(site_id: str, t: MachineType) -> MachineSpec:
    """The validation spec of a machine of type ``t`` on ``site_id``."""
    return MachineSpec(
        site_id=site_id,
        type_id=t.id,
        bounds={s.name: (s.min, s.max) for s in t.sensors},
        failure_modes=frozenset(t.failure_modes),
    )


def with_history(
    specs: Mapping[str, MachineSpec],
    types: Mapping[str, MachineType],
    versions: Mapping[str, Sequence[TypeVersion]],
    assignments: Mapping[str, Sequence[tuple[datetime, str]]],
) -> dict[str, MachineSpec]:
    """``specs`` (the registry as it is now) with each machine's earlier specs attached.

    The newest stretch of a machine's history is its current spec (the registry's rows are the
    authority for now); older stretches come from its type assignments and its types' versions.
    Specs of older stretches are shared between machines of a site and type version.
    """
    shared: dict[tuple[str, str, int], MachineSpec] = {}

    def older(site_id: str, type_id: str, v: TypeVersion | None) -> MachineSpec:
        key = (site_id, type_id, 0 if v is None else v.version)
        if key not in shared:
            t = v.type if v is not None else types.get(type_id)
            shared[key] = spec_of(site_id, t) if t is not None else MachineSpec(site_id, type_id)
        return shared[key]

    out: dict[str, MachineSpec] = {}
    for m, spec in specs.items():
        history = stretches(assignments.get(m) or [(BEGINNING, spec.type_id)], versions)
        # stretches that validate alike (a change of costs only) are one
        kept: list[tuple[datetime, MachineSpec]] = []
        for vf, t, v in history[:-1]:
            old = older(spec.site_id, t, v)
            if not kept or not _validates_alike(kept[-1][1], old):
                kept.append((vf, old))
        since = history[-1][0]
        while kept and _validates_alike(kept[-1][1], spec):
            since = kept.pop()[0]
        out[m] = replace(spec, since=since, earlier=tuple(kept)) if kept else spec
    return out


def _validates_alike(a: MachineSpec, b: MachineSpec) -> bool:
    return (a.type_id, a.bounds, a.failure_modes) == (b.type_id, b.bounds, b.failure_modes)


Periods = Mapping[str, Sequence[tuple[datetime, datetime | None]]]
"""Machine id -> [(from, until or None)]: when a machine had one type (no entry: always)."""


def bounded(periods: Periods) -> list[tuple[str, datetime, datetime | None]]:
    """(machine, from, until) of the periods that do not cover all time."""
    return [(m, lo, hi) for m, spans in periods.items() for lo, hi in spans if lo > BEGINNING or hi]


def type_periods(
    current: Mapping[str, str], assignments: Mapping[str, Sequence[tuple[datetime, str]]]
) -> dict[str, dict[str, list[tuple[datetime, datetime | None]]]]:
    """Type id -> machine -> [(from, until or None)] the machine had that type.

    ``current`` is machine -> type now; a machine without assignments always had it. The newest
    stretch always belongs to the current type.
    """
    out: dict[str, dict[str, list[tuple[datetime, datetime | None]]]] = {}
    for m, now_type in current.items():
        assigned = list(assignments.get(m) or [(BEGINNING, now_type)])
        assigned[-1] = (assigned[-1][0], now_type)
        for i, (start, type_id) in enumerate(assigned):
            end = assigned[i + 1][0] if i + 1 < len(assigned) else None
            if end is not None and end <= start:
                continue
            spans = out.setdefault(type_id, {}).setdefault(m, [])
            if spans and spans[-1][1] == start:
                spans[-1] = (spans[-1][0], end)  # the same type again: one period
            else:
                spans.append((start, end))
    return out


def changes(old: MachineType | None, new: MachineType | None) -> list[str]:
    """What differs from ``old`` to ``new``, in words (a type change, sensors, bounds, modes, costs)."""
    if new is None:
        return []
    if old is None:
        return [f"type {new.id} ({len(new.sensors)} sensors)"]
    if old.id != new.id:
        return [f"type {old.id} -> {new.id}"]
    out = [f"name {old.name!r} -> {new.name!r}"] if old.name != new.name else []
    before = {x.name: x for x in old.sensors}
    after = {x.name: x for x in new.sensors}
    for name, x in after.items():
        was = before.get(name)
        if was is None:
            out.append(f"sensor {name} added [{x.min:g}, {x.max:g}] {x.unit}")
        elif (was.min, was.max) != (x.min, x.max):
            out.append(f"{name} bounds [{was.min:g}, {was.max:g}] -> [{x.min:g}, {x.max:g}]")
        if was is not None and was.unit != x.unit:
            out.append(f"{name} unit {was.unit} -> {x.unit}")
    out += [f"sensor {name} removed" for name in before if name not in after]
    if set(old.failure_modes) != set(new.failure_modes):
        out.append(f"failure modes {sorted(old.failure_modes)} -> {sorted(new.failure_modes)}")
    if old.costs != new.costs:
        out.append("costs")
    return out

"""Asset registry storage: sites, lines, machine types (sensors, costs) and machines."""

from __future__ import annotations

from psycopg import Connection
from psycopg.types.json import Jsonb

from forewarn.assets import (
    AssetRegistry,
    Costs,
    Line,
    Machine,
    MachineSpec,
    MachineType,
    SensorSpec,
    Site,
)


def upsert_registry(conn: Connection, reg: AssetRegistry) -> None:
    """Insert or update every site, line, type and machine of ``reg`` (idempotent)."""
    with conn.cursor() as cur:
        cur.executemany(
            "insert into sites (id, name) values (%s, %s)"
            " on conflict (id) do update set name = excluded.name",
            [(s.id, s.name) for s in reg.sites],
        )
        cur.executemany(
            "insert into lines (id, site_id, name) values (%s, %s, %s)"
            " on conflict (id) do update set site_id = excluded.site_id, name = excluded.name",
            [(ln.id, ln.site_id, ln.name) for ln in reg.lines],
        )
        cur.executemany(
            "insert into machine_types (id, name, sensors, failure_modes, downtime_cost_per_h,"
            " repair_cost, planned_maintenance_cost, inspection_cost, repair_hours, planned_hours)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " on conflict (id) do update set name = excluded.name, sensors = excluded.sensors,"
            " failure_modes = excluded.failure_modes,"
            " downtime_cost_per_h = excluded.downtime_cost_per_h, repair_cost = excluded.repair_cost,"
            " planned_maintenance_cost = excluded.planned_maintenance_cost,"
            " inspection_cost = excluded.inspection_cost, repair_hours = excluded.repair_hours,"
            " planned_hours = excluded.planned_hours",
            [
                (
                    t.id,
                    t.name,
                    Jsonb(
                        [
                            {"name": s.name, "unit": s.unit, "min": s.min, "max": s.max}
                            for s in t.sensors
                        ]
                    ),
                    list(t.failure_modes),
                    t.costs.downtime_cost_per_h,
                    t.costs.repair_cost,
                    t.costs.planned_maintenance_cost,
                    t.costs.inspection_cost,
                    t.costs.repair_hours,
                    t.costs.planned_hours,
                )
                for t in reg.types
            ],
        )
        cur.executemany(
            "insert into machines (id, site_id, line_id, type_id) values (%s, %s, %s, %s)"
            " on conflict (id) do update set site_id = excluded.site_id,"
            " line_id = excluded.line_id, type_id = excluded.type_id",
            [(m.id, m.site_id, m.line_id, m.type_id) for m in reg.machines],
        )


def load_registry(conn: Connection) -> AssetRegistry:
    """The whole asset registry as plain data."""
    sites = [Site(*r) for r in conn.execute("select id, name from sites order by id")]
    lines = [Line(*r) for r in conn.execute("select id, site_id, name from lines order by id")]
    types = [
        MachineType(
            id=r[0],
            name=r[1],
            sensors=tuple(
                SensorSpec(s["name"], s["unit"], float(s["min"]), float(s["max"])) for s in r[2]
            ),
            failure_modes=tuple(r[3]),
            costs=Costs(*r[4:10]),
        )
        for r in conn.execute(
            "select id, name, sensors, failure_modes, downtime_cost_per_h, repair_cost,"
            " planned_maintenance_cost, inspection_cost, repair_hours, planned_hours"
            " from machine_types order by id"
        )
    ]
    machines = [
        Machine(*r)
        for r in conn.execute("select id, site_id, line_id, type_id from machines order by id")
    ]
    return AssetRegistry(sites, lines, types, machines)


def machine_specs(conn: Connection) -> dict[str, MachineSpec]:
    """Machine id -> validation spec (site, type, sensor bounds)."""
    return load_registry(conn).specs()


def register_unknown_machine(conn: Connection, machine_id: str, site_id: str) -> None:
    """Auto-register a machine seen on the wire but not in the registry (type 'unknown')."""
    conn.execute(
        "insert into sites (id, name) values (%s, %s) on conflict do nothing", (site_id, site_id)
    )
    conn.execute(
        "insert into machine_types (id, name, sensors) values ('unknown', 'Unregistered', '[]')"
        " on conflict do nothing"
    )
    conn.execute(
        "insert into machines (id, site_id, type_id, auto_registered) values (%s, %s, 'unknown', true)"
        " on conflict do nothing",
        (machine_id, site_id),
    )

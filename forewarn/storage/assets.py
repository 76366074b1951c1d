"""Asset registry storage: sites, lines, machine types (sensors, costs) and machines.

Reads (:func:`load_registry`, :func:`machine_specs`) and the two write paths: the simulator's
factory (:func:`upsert_registry`) and a plant's own asset file (:func:`apply_assets`), which is
applied in one transaction with versions. A machine type's sensors (units, bounds), failure modes
and costs, and a machine's type, are versioned: every change adds a row to
``machine_type_versions`` / ``machine_type_assignments`` valid from the time of the change, so
readings taken before it keep the meaning (units, bounds, type) they had. The first version of
anything is valid from :data:`BEGINNING`: history imported later belongs to it. Types and machines
registered before versioning existed (the demo's factory, auto-registration) get that baseline
version the first time they change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from forewarn.asset_file import AssetFile
from forewarn.assets import (
    BEGINNING,
    AssetRegistry,
    Costs,
    Line,
    Machine,
    MachineSpec,
    MachineType,
    SensorSpec,
    Site,
    TypeVersion,
    changes,
    stretches,
    type_periods,
    with_history,
)
from forewarn.errors import InputError
from forewarn.money import COST_FIELDS


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
            costs=Costs(**dict(zip(COST_FIELDS, (float(x) for x in r[4:10]), strict=True))),
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


def registry_fingerprint(conn: Connection) -> str:
    """A digest of the machines (id, type) and machine types (id, sensors) that changes whenever
    what a scorer partitions and scores by changes, for a fraction of :func:`load_registry`
    (a sum of 64-bit row hashes and the counts: no sort, no rows sent)."""
    row = conn.execute(
        "select concat_ws(':', (select count(*) || ':' || coalesce(sum(hashtextextended("
        "   id || ':' || type_id, 0)), 0) from machines), (select count(*) || ':' ||"
        "   coalesce(sum(hashtextextended(id || ':' || sensors::text, 0)), 0) from machine_types))"
    ).fetchone()
    assert row is not None
    return str(row[0])


def machine_specs(conn: Connection) -> dict[str, MachineSpec]:
    """Machine id -> validation spec (site, type, sensor bounds), with the specs of earlier
    versions attached (:meth:`MachineSpec.at` gives the one in effect at a reading's time)."""
    reg = load_registry(conn)
    types = {t.id: t for t in reg.types}
    return with_history(reg.specs(), types, all_type_versions(conn), all_assignments(conn))


def all_type_versions(conn: Connection) -> dict[str, list[TypeVersion]]:
    """Type id -> its versions, oldest first."""
    out: dict[str, list[TypeVersion]] = {}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select type_id, version, valid_from, name, sensors, failure_modes, costs"
            " from machine_type_versions order by type_id, valid_from, version"
        )
        for r in cur:
            out.setdefault(r["type_id"], []).append(
                TypeVersion(r["valid_from"], int(r["version"]), _as_type(r))
            )
    return out


def all_assignments(conn: Connection) -> dict[str, list[tuple[datetime, str]]]:
    """Machine id -> its (valid_from, type id) assignments, oldest first."""
    out: dict[str, list[tuple[datetime, str]]] = {}
    for m, valid_from, type_id in conn.execute(
        "select machine_id, valid_from, type_id from machine_type_assignments"
        " order by machine_id, valid_from"
    ):
        out.setdefault(m, []).append((valid_from, type_id))
    return out


def machine_type_periods(
    conn: Connection,
) -> dict[str, dict[str, list[tuple[datetime, datetime | None]]]]:
    """Type id -> machine -> [(from, until or None)] while the machine had that type."""
    current = {str(r[0]): str(r[1]) for r in conn.execute("select id, type_id from machines")}
    return type_periods(current, all_assignments(conn))


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


@dataclass
class AssetChanges:
    """What applying an asset file did, per kind: ids created, updated (new version), unchanged."""

    created: dict[str, list[str]] = field(default_factory=dict)
    updated: dict[str, list[str]] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)

    def note(self, kind: str, item: str, what: str) -> None:
        if what == "unchanged":
            self.unchanged[kind] = self.unchanged.get(kind, 0) + 1
        else:
            getattr(self, what).setdefault(kind, []).append(item)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sensors_json(sensors: tuple[SensorSpec, ...]) -> list[dict[str, Any]]:
    return [{"name": s.name, "unit": s.unit, "min": s.min, "max": s.max} for s in sensors]


def _type_row(t: MachineType, currency: str | None) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "sensors": _sensors_json(t.sensors),
        "failure_modes": list(t.failure_modes),
        "costs": asdict(t.costs),
        "currency": currency,
    }


def _current_type(conn: Connection, type_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "select id, name, sensors, failure_modes, currency, downtime_cost_per_h, repair_cost,"
            " planned_maintenance_cost, inspection_cost, repair_hours, planned_hours"
            " from machine_types where id = %s for update",
            (type_id,),
        ).fetchone()
    if row is None:
        return None
    costs = {k: float(row.pop(k)) for k in Costs.__dataclass_fields__}
    return {**row, "failure_modes": list(row["failure_modes"]), "costs": costs}


def _same_type(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("name", "sensors", "failure_modes", "costs", "currency")
    norm = [{k: (_norm_sensors(d[k]) if k == "sensors" else d[k]) for k in keys} for d in (a, b)]
    return norm[0] == norm[1]


def _norm_sensors(sensors: list[dict[str, Any]]) -> list[tuple[str, str, float, float]]:
    return [(s["name"], s["unit"], float(s["min"]), float(s["max"])) for s in sensors]


def _add_type_version(
    conn: Connection, row: dict[str, Any], *, valid_from: datetime, actor: str
) -> int:
    got = conn.execute(
        "insert into machine_type_versions (type_id, version, valid_from, name, sensors,"
        " failure_modes, costs, currency, actor)"
        # never valid before the newest version: versions follow each other in time
        " select %(id)s, coalesce(max(version), 0) + 1, greatest(%(from)s, max(valid_from)),"
        " %(name)s, %(sensors)s,"
        " %(modes)s, %(costs)s, %(currency)s, %(actor)s"
        " from machine_type_versions where type_id = %(id)s returning version",
        {
            "id": row["id"],
            "from": valid_from,
            "name": row["name"],
            "sensors": Jsonb(row["sensors"]),
            "modes": row["failure_modes"],
            "costs": Jsonb(row["costs"]),
            "currency": row["currency"],
            "actor": actor,
        },
    ).fetchone()
    assert got is not None
    return int(got[0])


def _has_versions(conn: Connection, table: str, column: str, key: str) -> bool:
    # table and column are constants of this module, never input
    sql = f"select 1 from {table} where {column} = %s limit 1"
    return conn.execute(sql.encode(), (key,)).fetchone() is not None


def _write_type(conn: Connection, row: dict[str, Any]) -> None:
    c = row["costs"]
    conn.execute(
        "insert into machine_types (id, name, sensors, failure_modes, currency,"
        " downtime_cost_per_h, repair_cost, planned_maintenance_cost, inspection_cost,"
        " repair_hours, planned_hours)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " on conflict (id) do update set name = excluded.name, sensors = excluded.sensors,"
        " failure_modes = excluded.failure_modes, currency = excluded.currency,"
        " downtime_cost_per_h = excluded.downtime_cost_per_h, repair_cost = excluded.repair_cost,"
        " planned_maintenance_cost = excluded.planned_maintenance_cost,"
        " inspection_cost = excluded.inspection_cost, repair_hours = excluded.repair_hours,"
        " planned_hours = excluded.planned_hours",
        (
            row["id"],
            row["name"],
            Jsonb(row["sensors"]),
            row["failure_modes"],
            row["currency"],
            c["downtime_cost_per_h"],
            c["repair_cost"],
            c["planned_maintenance_cost"],
            c["inspection_cost"],
            c["repair_hours"],
            c["planned_hours"],
        ),
    )


def upsert_type(
    conn: Connection, t: MachineType, currency: str | None, *, actor: str, now: datetime
) -> str:
    """Create or update one machine type; a change adds a version valid from ``now``.

    Returns "created", "updated" or "unchanged".
    """
    new = _type_row(t, currency)
    old = _current_type(conn, t.id)
    if old is not None and _same_type(old, new):
        return "unchanged"
    if old is not None and not _has_versions(conn, "machine_type_versions", "type_id", t.id):
        _add_type_version(conn, old, valid_from=BEGINNING, actor="baseline")
    _write_type(conn, new)
    _add_type_version(conn, new, valid_from=BEGINNING if old is None else now, actor=actor)
    return "created" if old is None else "updated"


def upsert_machine(
    conn: Connection,
    machine_id: str,
    *,
    site_id: str,
    type_id: str,
    line_id: str | None,
    actor: str,
    now: datetime,
) -> str:
    """Create or update one machine; a change of type is recorded valid from ``now``."""
    old = conn.execute(
        "select site_id, line_id, type_id from machines where id = %s for update", (machine_id,)
    ).fetchone()
    if old is not None and tuple(old) == (site_id, line_id, type_id):
        return "unchanged"
    conn.execute(
        "insert into machines (id, site_id, line_id, type_id) values (%s, %s, %s, %s)"
        " on conflict (id) do update set site_id = excluded.site_id,"
        " line_id = excluded.line_id, type_id = excluded.type_id, auto_registered = false",
        (machine_id, site_id, line_id, type_id),
    )
    if old is None or old[2] != type_id:
        if old is not None and not _has_versions(
            conn, "machine_type_assignments", "machine_id", machine_id
        ):
            _assign(conn, machine_id, old[2], BEGINNING, "baseline")
        _assign(conn, machine_id, type_id, BEGINNING if old is None else now, actor)
    return "created" if old is None else "updated"


def _assign(
    conn: Connection, machine_id: str, type_id: str, valid_from: datetime, actor: str
) -> None:
    conn.execute(
        "insert into machine_type_assignments (machine_id, valid_from, type_id, actor)"
        " values (%s, %s, %s, %s) on conflict (machine_id, valid_from)"
        " do update set type_id = excluded.type_id, actor = excluded.actor",
        (machine_id, valid_from, type_id, actor),
    )


def _existing(conn: Connection, table: str) -> dict[str, Any]:
    # table is a constant of this module, never input
    if table == "lines":
        return {r[0]: r[1] for r in conn.execute("select id, site_id from lines")}
    return {r[0]: None for r in conn.execute(f"select id from {table}".encode())}


def check_references(conn: Connection, doc: AssetFile) -> None:
    """Every site, line and type an item names exists in the file or the database."""
    sites = set(_existing(conn, "sites")) | {s.id for s in doc.sites}
    line_site = _existing(conn, "lines") | {ln.id: ln.site for ln in doc.lines}
    types = set(_existing(conn, "machine_types")) | {t.id for t in doc.machine_types}
    for i, ln in enumerate(doc.lines):
        if ln.site not in sites:
            raise InputError(f"lines[{i}] (id {ln.id!r}).site: unknown site {ln.site!r}")
    for i, m in enumerate(doc.machines):
        where = f"machines[{i}] (id {m.id!r})"
        if m.site not in sites:
            raise InputError(f"{where}.site: unknown site {m.site!r}")
        if m.type not in types:
            raise InputError(f"{where}.type: unknown machine type {m.type!r}")
        if m.line is not None:
            if m.line not in line_site:
                raise InputError(f"{where}.line: unknown line {m.line!r}")
            if line_site[m.line] != m.site:
                raise InputError(
                    f"{where}.line: line {m.line!r} belongs to site {line_site[m.line]!r},"
                    f" not {m.site!r}"
                )


def apply_assets(
    conn: Connection, doc: AssetFile, *, actor: str, now: datetime, dry_run: bool = False
) -> AssetChanges:
    """Create or update everything in ``doc`` in one transaction (all or nothing), audited.

    Raises InputError naming the item and field when something refers to an unknown site, line or
    type; nothing is written then. ``dry_run`` validates and reports, then rolls back.
    """
    changes = AssetChanges()
    reg = doc.registry()
    currencies = doc.currencies()
    with conn.transaction(force_rollback=dry_run):
        check_references(conn, doc)
        for s in reg.sites:
            cur = conn.execute(
                "insert into sites (id, name) values (%s, %s) on conflict (id) do update"
                " set name = excluded.name where sites.name is distinct from excluded.name"
                " returning (xmax = 0)",
                (s.id, s.name),
            ).fetchone()
            changes.note("sites", s.id, _what(cur))
        for ln in reg.lines:
            cur = conn.execute(
                "insert into lines (id, site_id, name) values (%s, %s, %s) on conflict (id) do"
                " update set site_id = excluded.site_id, name = excluded.name"
                " where (lines.site_id, lines.name) is distinct from (excluded.site_id,"
                " excluded.name) returning (xmax = 0)",
                (ln.id, ln.site_id, ln.name),
            ).fetchone()
            changes.note("lines", ln.id, _what(cur))
        for t in reg.types:
            what = upsert_type(conn, t, currencies[t.id], actor=actor, now=now)
            changes.note("machine_types", t.id, what)
        for m in reg.machines:
            what = upsert_machine(
                conn,
                m.id,
                site_id=m.site_id,
                type_id=m.type_id,
                line_id=m.line_id,
                actor=actor,
                now=now,
            )
            changes.note("machines", m.id, what)
        conn.execute(
            "insert into audit_log (actor, action, target, detail) values (%s, %s, %s, %s)",
            (actor, "assets.apply", "", Jsonb(changes.as_dict())),
        )
    return changes


def _what(row: tuple[Any, ...] | None) -> str:
    if row is None:
        return "unchanged"  # the conflict's where clause found nothing to change
    return "created" if row[0] else "updated"


def ensure_machine(
    conn: Connection,
    machine_id: str,
    *,
    site_id: str,
    type_id: str,
    line_id: str | None = None,
    actor: str,
    now: datetime,
) -> bool:
    """Register a machine (and its site) if absent, as gateways' births need; True when created.

    The machine type must exist (see :func:`upsert_type`). An existing machine is left as it is.
    """
    conn.execute(
        "insert into sites (id, name) values (%s, %s) on conflict do nothing", (site_id, site_id)
    )
    if conn.execute("select 1 from machines where id = %s", (machine_id,)).fetchone():
        return False
    upsert_machine(
        conn, machine_id, site_id=site_id, type_id=type_id, line_id=line_id, actor=actor, now=now
    )
    return True


def ensure_sensor(
    conn: Connection, type_id: str, sensor: SensorSpec, *, actor: str, now: datetime
) -> bool:
    """Add ``sensor`` to a machine type if it has none of that name (a new version); True if added."""
    t = get_machine_type(conn, type_id)
    if t is None:
        raise InputError(f"unknown machine type {type_id!r}")
    if t.sensor(sensor.name) is not None:
        return False
    grown = MachineType(t.id, t.name, (*t.sensors, sensor), t.failure_modes, t.costs)
    upsert_type(conn, grown, type_currency(conn, type_id), actor=actor, now=now)
    return True


def get_machine_type(conn: Connection, type_id: str) -> MachineType | None:
    """One machine type as plain data (None when unknown)."""
    row = _current_type(conn, type_id)
    if row is None:
        return None
    return _as_type(row)


def _as_type(row: dict[str, Any]) -> MachineType:
    return MachineType(
        row.get("id") or row["type_id"],
        row["name"],
        tuple(
            SensorSpec(s["name"], s["unit"], float(s["min"]), float(s["max"]))
            for s in row["sensors"]
        ),
        tuple(row["failure_modes"]),
        Costs(**{k: float(row["costs"].get(k, 0.0)) for k in Costs.__dataclass_fields__}),
    )


def type_currency(conn: Connection, type_id: str) -> str | None:
    row = conn.execute("select currency from machine_types where id = %s", (type_id,)).fetchone()
    return None if row is None else row[0]


def currencies(conn: Connection) -> dict[str, str | None]:
    """Machine type id -> currency of its costs (None when never given)."""
    return {r[0]: r[1] for r in conn.execute("select id, currency from machine_types")}


def type_versions(conn: Connection, type_id: str) -> list[dict[str, Any]]:
    """Every version of a machine type, oldest first, each with what changed from the one before."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "select version, valid_from, name, sensors, failure_modes, costs, currency, actor,"
            " recorded_at from machine_type_versions where type_id = %s order by version",
            (type_id,),
        ).fetchall()
    prev: MachineType | None = None
    for r in rows:
        t = _as_type({**r, "id": type_id})
        r["changes"] = changes(prev, t)
        prev = t
    return rows


def machine_assignments(conn: Connection, machine_id: str) -> list[dict[str, Any]]:
    """A machine's type over time, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select valid_from, type_id, actor, recorded_at from machine_type_assignments"
            " where machine_id = %s order by valid_from",
            (machine_id,),
        ).fetchall()


def machine_versions(conn: Connection, machine_id: str) -> list[dict[str, Any]]:
    """A machine's history, oldest first: from when (valid_from) which type in which version held,
    and what changed then (a type change, bounds, sensors, failure modes, costs)."""
    row = conn.execute("select type_id from machines where id = %s", (machine_id,)).fetchone()
    if row is None:
        return []
    assigned = all_assignments(conn).get(machine_id) or [(BEGINNING, str(row[0]))]
    versions = all_type_versions(conn)
    out: list[dict[str, Any]] = []
    prev: MachineType | None = None
    for valid_from, type_id, v in stretches(assigned, versions):
        t = v.type if v is not None else get_machine_type(conn, type_id)
        out.append(
            {
                "valid_from": valid_from,
                "type_id": type_id,
                "type_version": None if v is None else v.version,
                "changes": changes(prev, t),
            }
        )
        prev = t
    return out


def machine_type_at(conn: Connection, machine_id: str, ts: datetime) -> MachineType | None:
    """The machine's type as it was at ``ts``: the type assigned then, in its version of then.

    This is what a reading taken at ``ts`` means (its sensors' units and bounds).
    """
    row = conn.execute(
        "select coalesce((select a.type_id from machine_type_assignments a"
        "   where a.machine_id = m.id and a.valid_from <= %(ts)s order by a.valid_from desc"
        "   limit 1), m.type_id) from machines m where m.id = %(m)s",
        {"m": machine_id, "ts": ts},
    ).fetchone()
    if row is None:
        return None
    type_id = str(row[0])
    with conn.cursor(row_factory=dict_row) as cur:
        v = cur.execute(
            "select type_id, name, sensors, failure_modes, costs from machine_type_versions"
            " where type_id = %s and valid_from <= %s order by valid_from desc, version desc"
            " limit 1",
            (type_id, ts),
        ).fetchone()
    if v is None:
        return get_machine_type(conn, type_id)
    return _as_type(v)


def site_list(conn: Connection) -> list[dict[str, Any]]:
    """Sites with their lines and machine counts."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select s.id, s.name,"
            " coalesce((select json_agg(json_build_object('id', l.id, 'name', l.name)"
            "   order by l.id) from lines l where l.site_id = s.id), '[]') as lines,"
            " (select count(*) from machines m where m.site_id = s.id) as machines"
            " from sites s order by s.id"
        ).fetchall()


def machine_type_list(conn: Connection) -> list[dict[str, Any]]:
    """Machine types with sensors, failure modes, costs, currency, version and machine count."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "select t.id, t.name, t.sensors, t.failure_modes, t.currency,"
            " t.downtime_cost_per_h, t.repair_cost, t.planned_maintenance_cost,"
            " t.inspection_cost, t.repair_hours, t.planned_hours,"
            " (select max(version) from machine_type_versions v where v.type_id = t.id)"
            "   as version,"
            " (select count(*) from machines m where m.type_id = t.id) as machines"
            " from machine_types t order by t.id"
        ).fetchall()
    for r in rows:
        r["costs"] = {k: float(r.pop(k)) for k in Costs.__dataclass_fields__}
        r["failure_modes"] = list(r["failure_modes"])
        r["version"] = r["version"] or 1
    return rows


def load_costs(conn: Connection) -> tuple[dict[str, Costs], dict[str, str], dict[str, Costs]]:
    """(machine -> costs, machine -> type, type -> costs) from the asset registry."""
    by_type: dict[str, Costs] = {}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select id, downtime_cost_per_h, repair_cost, planned_maintenance_cost,"
            " inspection_cost, repair_hours, planned_hours from machine_types"
        )
        for r in cur.fetchall():
            type_id = r.pop("id")
            by_type[type_id] = Costs(**{k: float(v) for k, v in r.items()})
    types = {str(r[0]): str(r[1]) for r in conn.execute("select id, type_id from machines")}
    return {m: by_type[t] for m, t in types.items()}, types, by_type

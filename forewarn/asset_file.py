"""The asset file a plant's engineer writes: sites, lines, machine types and machines.

Two shapes, one model:

* TOML with ``[[sites]]``, ``[[lines]]``, ``[[machine_types]]`` (sensors, failure modes, costs)
  and ``[[machines]]`` tables: :class:`AssetFile`;
* CSV with one row per sensor (``site, line, machine, type, sensor, unit, min, max, ...``), where a
  machine type's fields repeat on each of its rows and a row with no ``sensor`` declares only a
  machine: :class:`AssetRow`, gathered into an :class:`AssetFile` by :func:`rows_to_file`.

Pure: parsing and validation, no database. Every error is an :class:`~forewarn.errors.InputError`
naming the row (CSV line number, or the TOML table and item id) and the field.
:func:`asset_schema` is the JSON Schema of the TOML shape (``forewarn assets schema``).
"""

from __future__ import annotations

import csv
import math
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from forewarn.assets import (
    AssetRegistry,
    Costs,
    Line,
    Machine,
    MachineType,
    SensorSpec,
    Site,
)
from forewarn.errors import InputError

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
_Id = Field(pattern=ID_PATTERN, description="Stable identifier (letters, digits, _ . : -)")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SensorIn(_Strict):
    """One sensor of a machine type: its unit and physical bounds (values outside are rejected)."""

    name: str = _Id
    unit: str = Field(max_length=32, description="Engineering unit, e.g. degC, mm/s, bar")
    min: float = Field(description="Lowest physically possible value")
    max: float = Field(description="Highest physically possible value")

    @model_validator(mode="after")
    def _bounds(self) -> SensorIn:
        if not (math.isfinite(self.min) and math.isfinite(self.max)):
            raise ValueError("min and max must be finite numbers")
        if self.min >= self.max:
            raise ValueError(f"min ({self.min:g}) must be below max ({self.max:g})")
        return self


class CostsIn(_Strict):
    """Money per event and downtime hours; the ROI and threshold maths read these."""

    currency: str | None = Field(
        default=None, pattern=CURRENCY_PATTERN, description="ISO 4217 code; default the file's"
    )
    downtime_cost_per_h: float = Field(default=0.0, ge=0, description="Lost production per hour")
    repair_cost: float = Field(default=0.0, ge=0, description="Unplanned repair after a failure")
    planned_maintenance_cost: float = Field(default=0.0, ge=0, description="Planned repair")
    inspection_cost: float = Field(default=0.0, ge=0, description="One inspection")
    repair_hours: float = Field(default=8.0, ge=0, description="Downtime of an unplanned repair")
    planned_hours: float = Field(default=2.0, ge=0, description="Downtime of a planned repair")


class MachineTypeIn(_Strict):
    id: str = _Id
    name: str = Field(min_length=1, max_length=200)
    sensors: list[SensorIn] = Field(min_length=1)
    failure_modes: list[str] = Field(default_factory=list, description="e.g. bearing, seal")
    costs: CostsIn = CostsIn()

    @model_validator(mode="after")
    def _unique_sensors(self) -> MachineTypeIn:
        names = [s.name for s in self.sensors]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"sensor {dup[0]!r} is declared twice")
        return self


class SiteIn(_Strict):
    id: str = _Id
    name: str = Field(default="", max_length=200, description="Default: the id")


class LineIn(_Strict):
    id: str = _Id
    site: str = _Id
    name: str = Field(default="", max_length=200, description="Default: the id")


class MachineIn(_Strict):
    id: str = _Id
    site: str = _Id
    type: str = _Id
    line: str | None = Field(default=None, pattern=ID_PATTERN)


class AssetFile(_Strict):
    """The whole file. Items may refer to sites, lines and types already in the database."""

    currency: str = Field(
        default="EUR", pattern=CURRENCY_PATTERN, description="Default currency of costs"
    )
    sites: list[SiteIn] = Field(default_factory=list)
    lines: list[LineIn] = Field(default_factory=list)
    machine_types: list[MachineTypeIn] = Field(default_factory=list)
    machines: list[MachineIn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> AssetFile:
        for table in ("sites", "lines", "machine_types", "machines"):
            ids = [item.id for item in getattr(self, table)]
            dup = sorted({i for i in ids if ids.count(i) > 1})
            if dup:
                raise ValueError(f"{table}: id {dup[0]!r} appears twice")
        return self

    def registry(self) -> AssetRegistry:
        """The file as the asset registry's plain data (currency resolved per type)."""
        return AssetRegistry(
            sites=[Site(s.id, s.name or s.id) for s in self.sites],
            lines=[Line(ln.id, ln.site, ln.name or ln.id) for ln in self.lines],
            types=[
                MachineType(
                    t.id,
                    t.name,
                    tuple(SensorSpec(s.name, s.unit, s.min, s.max) for s in t.sensors),
                    tuple(t.failure_modes),
                    Costs(**t.costs.model_dump(exclude={"currency"})),
                )
                for t in self.machine_types
            ],
            machines=[Machine(m.id, m.site, m.line, m.type) for m in self.machines],
        )

    def currencies(self) -> dict[str, str]:
        """Machine type id -> currency of its costs."""
        return {t.id: t.costs.currency or self.currency for t in self.machine_types}


class AssetRow(_Strict):
    """One CSV row: a sensor of a machine type, optionally with a machine of that type.

    Columns ``site`` and ``type`` are required; ``machine`` (with optional ``line``) declares a
    machine; ``sensor`` (with ``unit``, ``min``, ``max``) declares a sensor of the type. Type
    fields (``type_name``, ``failure_modes`` separated by ``;``, costs) may be given on any row of
    the type and must agree where repeated.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
    site: str = _Id
    site_name: str | None = None
    line: str | None = Field(default=None, pattern=ID_PATTERN)
    line_name: str | None = None
    machine: str | None = Field(default=None, pattern=ID_PATTERN)
    type: str = _Id
    type_name: str | None = None
    sensor: str | None = Field(default=None, pattern=ID_PATTERN)
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    failure_modes: str | None = None
    currency: str | None = Field(default=None, pattern=CURRENCY_PATTERN)
    downtime_cost_per_h: float | None = Field(default=None, ge=0)
    repair_cost: float | None = Field(default=None, ge=0)
    planned_maintenance_cost: float | None = Field(default=None, ge=0)
    inspection_cost: float | None = Field(default=None, ge=0)
    repair_hours: float | None = Field(default=None, ge=0)
    planned_hours: float | None = Field(default=None, ge=0)


CSV_COLUMNS: tuple[str, ...] = tuple(AssetRow.model_fields)
_TYPE_FIELDS = ("type_name", "failure_modes", "currency", *tuple(CostsIn.model_fields)[1:])


def _field_path(loc: Iterable[Any], data: Mapping[str, Any]) -> str:
    """``machine_types[0] (id 'cnc').sensors[2].max`` from a pydantic error location."""
    out: list[str] = []
    node: Any = data
    for part in loc:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and part < len(node) else None
            label = f"[{part}]"
            if isinstance(item, Mapping) and isinstance(item.get("id") or item.get("name"), str):
                key = "id" if "id" in item else "name"
                label += f" ({key} {item[key]!r})"
            out.append(label)
            node = item
        else:
            out.append(("." if out else "") + str(part))
            node = node.get(part) if isinstance(node, Mapping) else None
    return "".join(out) or "(file)"


def _first_error(exc: ValidationError, data: Mapping[str, Any]) -> str:
    errors = exc.errors()
    e = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    msg = str(e["msg"]).removeprefix("Value error, ")
    return f"{_field_path(e['loc'], data)}: {msg}{more}"


def file_from_mapping(data: Mapping[str, Any], source: str) -> AssetFile:
    """Validate parsed TOML/JSON data; an error names the table, item and field."""
    try:
        return AssetFile.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"{source}: {_first_error(exc, data)}") from None


def _csv_row(raw: Mapping[str, str | None], line: int, source: str) -> AssetRow:
    data = {k.strip(): (v if v not in ("", None) else None) for k, v in raw.items() if k}
    unknown = sorted(set(data) - set(CSV_COLUMNS))
    if unknown:
        raise InputError(
            f"{source}: row {line}, field {unknown[0]!r}: unknown column"
            f" (expected some of {', '.join(CSV_COLUMNS)})"
        )
    try:
        return AssetRow.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as exc:
        e = exc.errors()[0]
        field = ".".join(str(p) for p in e["loc"]) or "(row)"
        msg = str(e["msg"]).removeprefix("Value error, ")
        raise InputError(f"{source}: row {line}, field {field!r}: {msg}") from None


def rows_to_file(rows: Iterable[tuple[int, AssetRow]], source: str) -> AssetFile:
    """Gather CSV rows (with their line numbers) into one validated :class:`AssetFile`."""
    sites: dict[str, dict[str, Any]] = {}
    lines: dict[str, dict[str, Any]] = {}
    types: dict[str, dict[str, Any]] = {}
    type_rows: dict[str, int] = {}
    sensors: dict[str, dict[str, tuple[int, dict[str, Any]]]] = {}
    machines: dict[str, tuple[int, dict[str, Any]]] = {}

    def agree(target: dict[str, Any], key: str, value: Any, line: int, what: str) -> None:
        if value is None:
            return
        if key in target and target[key] != value:
            raise InputError(
                f"{source}: row {line}, field {key!r}: {value!r} disagrees with {target[key]!r}"
                f" given earlier for {what}"
            )
        target[key] = value

    for line, r in rows:
        site = sites.setdefault(r.site, {"id": r.site})
        agree(site, "name", r.site_name, line, f"site {r.site!r}")
        if r.line is not None:
            ln = lines.setdefault(r.line, {"id": r.line, "site": r.site})
            agree(ln, "site", r.site, line, f"line {r.line!r}")
            agree(ln, "name", r.line_name, line, f"line {r.line!r}")
        t = types.setdefault(r.type, {"id": r.type, "costs": {}})
        type_rows.setdefault(r.type, line)
        agree(t, "name", r.type_name, line, f"type {r.type!r}")
        if r.failure_modes is not None:
            modes = [m.strip() for m in r.failure_modes.split(";") if m.strip()]
            agree(t, "failure_modes", modes, line, f"type {r.type!r}")
        for key in _TYPE_FIELDS[2:]:
            agree(t["costs"], key, getattr(r, key), line, f"type {r.type!r}")
        if r.sensor is not None:
            missing = [k for k in ("unit", "min", "max") if getattr(r, k) is None]
            if missing:
                raise InputError(
                    f"{source}: row {line}, field {missing[0]!r}: required with a sensor"
                )
            spec = {"name": r.sensor, "unit": r.unit, "min": r.min, "max": r.max}
            prev = sensors.setdefault(r.type, {}).get(r.sensor)
            if prev is not None and prev[1] != spec:
                field = next(k for k in ("unit", "min", "max") if prev[1][k] != spec[k])
                raise InputError(
                    f"{source}: row {line}, field {field!r}: sensor {r.sensor!r} of type"
                    f" {r.type!r} was given {prev[1][field]!r} on row {prev[0]}"
                )
            sensors[r.type].setdefault(r.sensor, (line, spec))
        if r.machine is not None:
            m = {"id": r.machine, "site": r.site, "type": r.type, "line": r.line}
            prev_m = machines.get(r.machine)
            if prev_m is not None and prev_m[1] != m:
                field = next(k for k in ("site", "type", "line") if prev_m[1][k] != m[k])
                raise InputError(
                    f"{source}: row {line}, field {field!r}: machine {r.machine!r} was given"
                    f" {prev_m[1][field]!r} on row {prev_m[0]}"
                )
            machines.setdefault(r.machine, (line, m))
    for tid, t in types.items():
        t.setdefault("name", tid)
        t["sensors"] = [spec for _, spec in sensors.get(tid, {}).values()]
        if not t["sensors"]:
            raise InputError(
                f"{source}: row {type_rows[tid]}, field 'sensor': type {tid!r} has no sensor row"
            )
    data = {
        "sites": list(sites.values()),
        "lines": list(lines.values()),
        "machine_types": list(types.values()),
        "machines": [m for _, m in machines.values()],
    }
    try:
        return AssetFile.model_validate(data)
    except ValidationError as exc:
        e = exc.errors()[0]
        loc = list(e["loc"])
        row = "?"
        if len(loc) >= 2 and loc[0] == "machine_types" and isinstance(loc[1], int):
            row = str(type_rows[data["machine_types"][loc[1]]["id"]])
        elif len(loc) >= 2 and loc[0] == "machines" and isinstance(loc[1], int):
            row = str(machines[data["machines"][loc[1]]["id"]][0])
        field = str(loc[-1]) if loc else "(row)"
        msg = str(e["msg"]).removeprefix("Value error, ")
        raise InputError(f"{source}: row {row}, field {field!r}: {msg}") from None


def parse_asset_file(path: Path) -> AssetFile:
    """Read a TOML (``.toml``) or CSV (``.csv``) asset file; InputError names row and field."""
    source = str(path)
    if not path.is_file():
        raise InputError(f"{source}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{source}: not valid TOML: {exc}") from None
        return file_from_mapping(data, source)
    if suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames:
                raise InputError(f"{source}: empty CSV (expected a header row)")
            rows = [(i + 2, _csv_row(raw, i + 2, source)) for i, raw in enumerate(reader)]
        if not rows:
            raise InputError(f"{source}: the CSV has a header but no rows")
        return rows_to_file(rows, source)
    raise InputError(f"{source}: expected a .toml or .csv file")


def asset_schema() -> dict[str, Any]:
    """JSON Schema of the TOML asset file (the CSV shape is :data:`CSV_COLUMNS` of AssetRow)."""
    schema = AssetFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Forewarn asset file"
    return schema


def file_from_registry(reg: AssetRegistry, currencies: Mapping[str, str | None]) -> AssetFile:
    """The asset file that recreates ``reg`` (``forewarn assets export``)."""
    return AssetFile(
        sites=[SiteIn(id=s.id, name=s.name) for s in reg.sites],
        lines=[LineIn(id=ln.id, site=ln.site_id, name=ln.name) for ln in reg.lines],
        machine_types=[
            MachineTypeIn(
                id=t.id,
                name=t.name,
                sensors=[
                    SensorIn(name=s.name, unit=s.unit, min=s.min, max=s.max) for s in t.sensors
                ],
                failure_modes=list(t.failure_modes),
                costs=CostsIn(
                    currency=currencies.get(t.id),
                    downtime_cost_per_h=t.costs.downtime_cost_per_h,
                    repair_cost=t.costs.repair_cost,
                    planned_maintenance_cost=t.costs.planned_maintenance_cost,
                    inspection_cost=t.costs.inspection_cost,
                    repair_hours=t.costs.repair_hours,
                    planned_hours=t.costs.planned_hours,
                ),
            )
            for t in reg.types
            if t.sensors  # the auto-registration placeholder type has none
        ],
        machines=[
            MachineIn(id=m.id, site=m.site_id, type=m.type_id, line=m.line_id)
            for m in reg.machines
            if any(t.id == m.type_id and t.sensors for t in reg.types)
        ],
    )


def to_toml(doc: AssetFile) -> str:
    """Render an asset file as TOML (round-trips through :func:`parse_asset_file`)."""

    def val(v: Any) -> str:
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return str(v)

    out = [f"currency = {val(doc.currency)}", ""]
    for s in doc.sites:
        out += ["[[sites]]", f"id = {val(s.id)}", f"name = {val(s.name)}", ""]
    for ln in doc.lines:
        out += ["[[lines]]", f"id = {val(ln.id)}", f"site = {val(ln.site)}"]
        out += [f"name = {val(ln.name)}", ""]
    for t in doc.machine_types:
        out += ["[[machine_types]]", f"id = {val(t.id)}", f"name = {val(t.name)}"]
        out += [f"failure_modes = {val(t.failure_modes)}", ""]
        out += ["[machine_types.costs]"]
        for k, v in t.costs.model_dump(exclude_none=True).items():
            out.append(f"{k} = {val(v)}")
        out.append("")
        for sensor in t.sensors:
            out += ["[[machine_types.sensors]]"]
            out += [f"name = {val(sensor.name)}", f"unit = {val(sensor.unit)}"]
            out += [f"min = {val(sensor.min)}", f"max = {val(sensor.max)}", ""]
    for m in doc.machines:
        out += ["[[machines]]", f"id = {val(m.id)}", f"site = {val(m.site)}"]
        out += [f"type = {val(m.type)}"]
        if m.line is not None:
            out.append(f"line = {val(m.line)}")
        out.append("")
    return "\n".join(out)

"""The factory configuration: sites, lines, machine types (sensors, physics, failure modes, costs).

A TOML file (the default ships as ``forewarn/factory.toml``) is read with :func:`load_factory`.
``Factory.registry()`` turns it into the asset registry the message contract validates against; the
simulator reads the physics parameters (``TypeConfig.params``, ``components``, ``regimes`` and the
per-sensor ``base``/``noise``/``drift``/``effects``) from the same object.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from forewarn.assets import AssetRegistry, Costs, Line, Machine, MachineType, SensorSpec, Site
from forewarn.errors import ConfigError

DEFAULT_FACTORY = Path(__file__).with_name("factory.toml")
MODELS = ("cnc", "pump", "turbofan")


@dataclass(frozen=True, slots=True)
class SensorConfig:
    name: str
    unit: str
    min: float
    max: float
    noise: float = 0.0
    drift: float = 0.0  # standard deviation of the slow drift per simulated day
    decimals: int = 3
    base: float = 0.0
    load_gain: float = 0.0  # shift per unit of continuous load (pump duty)
    regime_gain: float = 0.0  # shift per unit of the regime's z (turbofan operating point)
    effects: Mapping[str, float] = field(default_factory=dict)  # component -> shift at d=1

    def spec(self) -> SensorSpec:
        return SensorSpec(self.name, self.unit, self.min, self.max)


@dataclass(frozen=True, slots=True)
class ComponentConfig:
    """A wearing part: degradation d grows from 0 to 1 over a life drawn from ``life_h``."""

    name: str
    life_h: tuple[float, float]
    growth: str = "power"  # "power": d = x**k ; "exp": d = (exp(k x) - 1) / (exp(k) - 1)
    k: float = 1.0


@dataclass(frozen=True, slots=True)
class RegimeConfig:
    settings: Mapping[str, float]
    z: float


@dataclass(frozen=True, slots=True)
class TypeConfig:
    id: str
    name: str
    model: str
    count: int
    sensors: tuple[SensorConfig, ...]
    failure_modes: tuple[str, ...]
    costs: Costs
    params: Mapping[str, Any] = field(default_factory=dict)
    components: tuple[ComponentConfig, ...] = ()
    regimes: tuple[RegimeConfig, ...] = ()
    line: str | None = None
    preventive_every_h: float = 0.0

    def machine_type(self) -> MachineType:
        return MachineType(
            self.id,
            self.name,
            tuple(s.spec() for s in self.sensors),
            self.failure_modes,
            self.costs,
        )


@dataclass(frozen=True, slots=True)
class SiteConfig:
    id: str
    name: str
    lines: tuple[tuple[str, str], ...]  # (line suffix, name); line id = f"{site}-{suffix}"


@dataclass(frozen=True, slots=True)
class Factory:
    sites: tuple[SiteConfig, ...]
    types: tuple[TypeConfig, ...]
    start: datetime
    telemetry_interval_s: float = 300.0
    dropout_rate: float = 0.002
    bad_rate: float = 0.0
    inspection_hours: float = 1.0
    topic_root: str = "forewarn/v1"
    currency: str = "EUR"  # of every cost in this file (ISO 4217 code); shown on money figures

    def type(self, type_id: str) -> TypeConfig:
        for t in self.types:
            if t.id == type_id:
                return t
        raise KeyError(type_id)

    def machines(self) -> list[tuple[Machine, TypeConfig]]:
        """Every machine with its type; the k-th machine of a type goes to site k mod #sites."""
        out: list[tuple[Machine, TypeConfig]] = []
        for t in self.types:
            for k in range(t.count):
                site = self.sites[k % len(self.sites)]
                suffix = t.line if t.line is not None else site.lines[0][0]
                out.append(
                    (Machine(f"{site.id}-{t.id}-{k:03d}", site.id, f"{site.id}-{suffix}", t.id), t)
                )
        return out

    def registry(self) -> AssetRegistry:
        """The asset registry (sites, lines, types with bounds and costs, machines) of this plant."""
        return AssetRegistry(
            sites=[Site(s.id, s.name) for s in self.sites],
            lines=[Line(f"{s.id}-{lid}", s.id, name) for s in self.sites for lid, name in s.lines],
            types=[t.machine_type() for t in self.types],
            machines=[m for m, _ in self.machines()],
        )

    def scaled(self, machines: int) -> Factory:
        """The same mix of types scaled to ``machines`` machines in total (largest remainder)."""
        if machines < 1:
            raise ConfigError("--machines", "must be at least 1")
        total = sum(t.count for t in self.types) or len(self.types)
        weights = [(t.count or 1) / total for t in self.types]
        counts = [math.floor(w * machines) for w in weights]
        order = sorted(range(len(weights)), key=lambda i: (-(weights[i] * machines - counts[i]), i))
        for i in order[: machines - sum(counts)]:
            counts[i] += 1
        return replace(
            self, types=tuple(replace(t, count=c) for t, c in zip(self.types, counts, strict=True))
        )


def _num(d: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ConfigError(where, f"{key} must be a number")
    return float(v)


def _pair(v: Any, where: str) -> tuple[float, float]:
    if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, int | float) for x in v)):
        raise ConfigError(where, "must be a [low, high] pair of numbers")
    lo, hi = float(v[0]), float(v[1])
    if not 0 < lo <= hi:
        raise ConfigError(where, "needs 0 < low <= high")
    return lo, hi


def _sensor(d: Mapping[str, Any], where: str) -> SensorConfig:
    s = SensorConfig(
        name=str(d["name"]),
        unit=str(d.get("unit", "")),
        min=_num(d, "min", where),
        max=_num(d, "max", where),
        noise=_num(d, "noise", where, 0.0),
        drift=_num(d, "drift", where, 0.0),
        decimals=int(d.get("decimals", 3)),
        base=_num(d, "base", where, 0.0),
        load_gain=_num(d, "load_gain", where, 0.0),
        regime_gain=_num(d, "regime_gain", where, 0.0),
        effects={str(k): float(v) for k, v in dict(d.get("effects", {})).items()},
    )
    if not s.min < s.max:
        raise ConfigError(where, f"sensor {s.name}: min must be below max")
    return s


def _type(d: Mapping[str, Any], where: str) -> TypeConfig:
    where = f"{where}[{d.get('id', '?')}]"
    model = str(d.get("model", ""))
    if model not in MODELS:
        raise ConfigError(where, f"model must be one of {', '.join(MODELS)}")
    c = d.get("costs", {})
    try:
        costs = Costs(**{f.name: float(c[f.name]) for f in fields(Costs)})
    except KeyError as exc:
        raise ConfigError(f"{where}.costs", f"missing {exc.args[0]}") from None
    components = tuple(
        ComponentConfig(
            name=str(name),
            life_h=_pair(cd.get("life_h"), f"{where}.components.{name}.life_h"),
            growth=str(cd.get("growth", "power")),
            k=_num(cd, "k", f"{where}.components.{name}", 1.0),
        )
        for name, cd in dict(d.get("components", {})).items()
    )
    regimes = tuple(
        RegimeConfig(
            {str(k): float(v) for k, v in r.get("settings", {}).items()}, float(r.get("z", 0))
        )
        for r in d.get("regimes", [])
    )
    count = int(d.get("count", 0))
    if count < 0:
        raise ConfigError(where, "count must be >= 0")
    return TypeConfig(
        id=str(d["id"]),
        name=str(d.get("name", d["id"])),
        model=model,
        count=count,
        sensors=tuple(_sensor(s, f"{where}.sensors") for s in d.get("sensors", [])),
        failure_modes=tuple(str(m) for m in d.get("failure_modes", [])),
        costs=costs,
        params=dict(d.get("params", {})),
        components=components,
        regimes=regimes,
        line=d.get("line"),
        preventive_every_h=_num(d, "preventive_every_h", where, 0.0),
    )


def parse_factory(data: Mapping[str, Any], source: str = "factory") -> Factory:
    """Build a :class:`Factory` from parsed TOML; a bad entry raises ConfigError naming it."""
    plant = dict(data.get("plant", {}))
    start_raw = plant.get("start", "2026-01-01T00:00:00Z")
    start = (
        start_raw
        if isinstance(start_raw, datetime)
        else datetime.fromisoformat(str(start_raw).replace("Z", "+00:00"))
    )
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    try:
        sites = tuple(
            SiteConfig(
                str(s["id"]),
                str(s.get("name", s["id"])),
                tuple((str(ln["id"]), str(ln.get("name", ln["id"]))) for ln in s.get("lines", []))
                or (("l1", "Line 1"),),
            )
            for s in data.get("sites", [])
        )
        types = tuple(_type(t, f"{source}: types") for t in data.get("types", []))
    except KeyError as exc:
        raise ConfigError(source, f"missing key {exc.args[0]}") from None
    if not sites or not types:
        raise ConfigError(source, "needs at least one [[sites]] and one [[types]] entry")
    ids = [t.id for t in types]
    if len(set(ids)) != len(ids):
        raise ConfigError(source, "machine type ids must be unique")
    interval = _num(plant, "telemetry_interval_s", f"{source}: plant", 300.0)
    if interval <= 0:
        raise ConfigError(f"{source}: plant.telemetry_interval_s", "must be > 0")
    return Factory(
        sites=sites,
        types=types,
        start=start.astimezone(UTC),
        telemetry_interval_s=interval,
        dropout_rate=_num(plant, "dropout_rate", f"{source}: plant", 0.002),
        bad_rate=_num(plant, "bad_rate", f"{source}: plant", 0.0),
        inspection_hours=_num(plant, "inspection_hours", f"{source}: plant", 1.0),
        topic_root=str(plant.get("topic_root", "forewarn/v1")),
        currency=str(plant.get("currency", "EUR")).strip().upper() or "EUR",
    )


def load_factory(path: Path | None = None, machines: int | None = None) -> Factory:
    """Read a factory TOML (default: the shipped one); ``machines`` scales its mix to N machines."""
    p = path or DEFAULT_FACTORY
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(p), f"cannot read factory config: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), f"not valid TOML: {exc}") from None
    factory = parse_factory(data, str(p))
    return factory.scaled(machines) if machines is not None else factory

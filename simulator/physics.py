"""Machine physics: how wear grows with operating hours and shows in the clean sensor values.

Three models with distinct physics (selected by a type's ``model`` in the factory config):

* :class:`Cnc` (AI4I 2020 style): jobs set torque and power, hence speed; the tool wears with
  operating time (tool_wear failure at its drawn life), a blunt tool needs more torque and
  wear x torque above the quality variant's limit is an overstrain failure; cooling fouling raises
  the process-minus-air temperature (heat failure); an accelerating spindle-drive degradation makes
  the speed sag (power failure).
* :class:`Pump`: a continuous duty (load) process; bearing wear (accelerating) raises vibration,
  bearing temperature and current; seal wear lowers discharge pressure and flow.
* :class:`Turbofan` (C-MAPSS style): flights in one of several operating regimes (sent as
  ``regime`` and ``settings``) shift every sensor; HPC and fan degradation grow exponentially.

A model returns clean values in its type's sensor order; noise, drift, clipping and drop-outs are
the engine's job. ``advance`` returns the failure mode whose component crossed its limit, or None.
"""

from __future__ import annotations

import math
from typing import Any

from forewarn.factory import ComponentConfig, TypeConfig
from simulator.draws import Draws

INITIAL_AGE_MAX = 0.97  # random start age, as a fraction of each life: failures begin early


def _growth(c: ComponentConfig, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if c.growth == "exp":
        return math.expm1(c.k * x) / math.expm1(c.k)
    return float(x**c.k)


class Component:
    """Degradation of one part: d = growth(age / life); failure when d >= 1 (age >= life)."""

    __slots__ = ("cfg", "life_h", "age_h", "d")

    def __init__(self, cfg: ComponentConfig, draws: Draws, initial: bool) -> None:
        self.cfg = cfg
        self.life_h = draws.uniform(*cfg.life_h)
        self.age_h = draws.uniform(0.0, INITIAL_AGE_MAX) * self.life_h if initial else 0.0
        self.d = _growth(cfg, self.age_h / self.life_h)

    def advance(self, dt_h: float) -> bool:
        self.age_h += dt_h
        self.d = _growth(self.cfg, self.age_h / self.life_h)
        return self.age_h >= self.life_h


class Model:
    """Base: components, a sensor list, optional regime/settings."""

    regime: int | None = None
    settings: dict[str, float] | None = None

    def __init__(self, cfg: TypeConfig, draws: Draws) -> None:
        self.cfg = cfg
        self.draws = draws
        self.components: dict[str, Component] = {}

    def renew(self, name: str) -> None:
        comp = self.components.get(name)
        if comp is not None:
            self.components[name] = Component(comp.cfg, self.draws, initial=False)

    def degradation(self) -> dict[str, float]:
        """Component -> degradation in [0, 1] (1 = failure); the ground truth of health."""
        return {n: min(c.d, 1.0) for n, c in self.components.items()}

    def advance(self, dt_h: float, t_h: float) -> str | None:
        raise NotImplementedError

    def clean(self, t_h: float) -> list[float]:
        raise NotImplementedError


class Linear(Model):
    """value = base + load_gain * load + regime_gain * z + sum(effect_c * d_c): pump and turbofan."""

    def __init__(self, cfg: TypeConfig, draws: Draws) -> None:
        super().__init__(cfg, draws)
        for c in cfg.components:
            self.components[c.name] = Component(c, draws, initial=True)
        self.load = 0.0
        self.z = 0.0
        names = [c.name for c in cfg.components]
        # per sensor: (base, load gain, regime gain, ((component index, shift at d=1), ...))
        self._rows = [
            (
                s.base,
                s.load_gain,
                s.regime_gain,
                tuple((names.index(c), e) for c, e in s.effects.items() if c in names),
            )
            for s in cfg.sensors
        ]

    def advance(self, dt_h: float, t_h: float) -> str | None:
        failed = None
        for name, comp in self.components.items():
            if comp.advance(dt_h) and failed is None:
                failed = name
        return failed

    def clean(self, t_h: float) -> list[float]:
        d = [c.d for c in self.components.values()]
        load, z = self.load, self.z
        out = []
        for base, lg, rg, effects in self._rows:
            v = base + lg * load + rg * z
            for j, e in effects:
                v += e * d[j]
            out.append(v)
        return out


class Pump(Linear):
    def __init__(self, cfg: TypeConfig, draws: Draws) -> None:
        super().__init__(cfg, draws)
        p = cfg.params
        self._theta = float(p.get("load_reversion_per_h", 0.5))
        self._sigma = float(p.get("load_volatility", 0.35))
        self.load = draws.uniform(-0.5, 0.5)

    def advance(self, dt_h: float, t_h: float) -> str | None:
        # Ornstein-Uhlenbeck duty, kept inside [-1, 1]
        self.load += (
            -self._theta * self.load * dt_h + self._sigma * math.sqrt(dt_h) * self.draws.normal()
        )
        self.load = max(-1.0, min(1.0, self.load))
        return super().advance(dt_h, t_h)


class Turbofan(Linear):
    def __init__(self, cfg: TypeConfig, draws: Draws) -> None:
        super().__init__(cfg, draws)
        self._flight_mean_h = float(cfg.params.get("flight_mean_h", 2.0))
        self._flight_left_h = 0.0
        self._new_flight()

    def _new_flight(self) -> None:
        regimes = self.cfg.regimes
        if not regimes:
            self.regime, self.settings, self.z = None, None, 0.0
        else:
            i = min(int(self.draws.uniform() * len(regimes)), len(regimes) - 1)
            self.regime, self.settings, self.z = i, dict(regimes[i].settings), regimes[i].z
        self._flight_left_h = self.draws.exponential(self._flight_mean_h)

    def advance(self, dt_h: float, t_h: float) -> str | None:
        self._flight_left_h -= dt_h
        if self._flight_left_h <= 0:
            self._new_flight()
        return super().advance(dt_h, t_h)


class Cnc(Model):
    """AI4I-style mill; sensors air_temp, process_temp, rotational_speed, torque, tool_wear."""

    SENSORS = ("air_temp", "process_temp", "rotational_speed", "torque", "tool_wear")
    VARIANTS = (("L", 0.5, 2.0), ("M", 0.3, 3.0), ("H", 0.2, 5.0))  # AI4I mix and wear minutes

    def __init__(self, cfg: TypeConfig, draws: Draws) -> None:
        super().__init__(cfg, draws)
        names = tuple(s.name for s in cfg.sensors)
        if names != self.SENSORS:
            raise ValueError(f"type {cfg.id}: cnc model needs sensors {self.SENSORS}, got {names}")
        p: dict[str, Any] = dict(cfg.params)
        u = draws.uniform()
        acc = 0.0
        variant, wear_mult = "L", 2.0
        for v, share, mult in self.VARIANTS:
            acc += share
            if u < acc:
                variant, wear_mult = v, mult
                break
        self.variant = variant
        limits = p.get("strain_limit_nm_min", {"L": 11000.0, "M": 12000.0, "H": 13000.0})
        self.strain_limit = float(limits[variant])
        self.wear_rate = float(p.get("wear_min_per_h", 0.6)) * wear_mult / 3.0
        self.tool_life = tuple(float(x) for x in p.get("tool_life_min", (200.0, 240.0)))
        self.torque_gain = float(p.get("torque_wear_gain", 0.25))
        self.dt_gain = float(p.get("cooling_dt_gain_k", 7.0))
        self.speed_loss = float(p.get("drive_speed_loss", 0.15))
        self.job_mean_h = float(p.get("job_mean_h", 1.0))
        self.air_offset = draws.normal() * 1.0
        self.components["heat"] = Component(
            ComponentConfig("heat", _pair(p, "cooling_life_h", (360.0, 1080.0)), "power", 1.5),
            draws,
            True,
        )
        self.components["power"] = Component(
            ComponentConfig("power", _pair(p, "drive_life_h", (480.0, 1200.0)), "power", 2.0),
            draws,
            True,
        )
        self._new_tool(initial=True)
        self._job_left_h = 0.0
        self._new_job()

    def _new_tool(self, initial: bool) -> None:
        self.tool_limit = self.draws.uniform(*self.tool_life)
        self.wear = self.draws.uniform(0.0, INITIAL_AGE_MAX) * self.tool_limit if initial else 0.0

    def _new_job(self) -> None:
        self.job_torque = max(15.0, min(70.0, 40.0 + 7.0 * self.draws.normal()))
        power_w = 6400.0 + 600.0 * self.draws.normal()
        self.job_speed = max(
            1200.0, min(2800.0, power_w / (self.job_torque * 2.0 * math.pi / 60.0))
        )
        self._job_left_h = self.draws.exponential(self.job_mean_h)

    def renew(self, name: str) -> None:
        if name in ("tool_wear", "overstrain"):
            self._new_tool(initial=False)
        else:
            super().renew(name)

    def degradation(self) -> dict[str, float]:
        out = super().degradation()
        out["tool_wear"] = min(self.wear / self.tool_limit, 1.0)
        out["overstrain"] = min(self.wear * self._torque() / self.strain_limit, 1.0)
        return out

    def _torque(self) -> float:
        return self.job_torque * (1.0 + self.torque_gain * self.wear / 200.0)

    def advance(self, dt_h: float, t_h: float) -> str | None:
        self._job_left_h -= dt_h
        if self._job_left_h <= 0:
            self._new_job()
        self.wear += self.wear_rate * dt_h
        if self.wear >= self.tool_limit:
            return "tool_wear"
        if self.wear * self._torque() >= self.strain_limit:
            return "overstrain"
        for name in ("heat", "power"):
            if self.components[name].advance(dt_h):
                return name
        return None

    def clean(self, t_h: float) -> list[float]:
        air = 300.0 + self.air_offset + 2.0 * math.sin(2.0 * math.pi * t_h / 24.0)
        speed = self.job_speed * (1.0 - self.speed_loss * self.components["power"].d)
        process = air + 10.0 + self.dt_gain * self.components["heat"].d + 0.001 * (speed - 1500.0)
        return [air, process, speed, self._torque(), self.wear]


def _pair(p: dict[str, Any], key: str, default: tuple[float, float]) -> tuple[float, float]:
    v = p.get(key, default)
    return float(v[0]), float(v[1])


MODEL_CLASSES: dict[str, type[Model]] = {"cnc": Cnc, "pump": Pump, "turbofan": Turbofan}


def make_model(cfg: TypeConfig, draws: Draws) -> Model:
    """The physics model named by ``cfg.model``, at a random (seeded) initial age."""
    return MODEL_CLASSES[cfg.model](cfg, draws)

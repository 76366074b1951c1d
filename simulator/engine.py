"""The deterministic plant engine: machines run, degrade, fail, get repaired and come back renewed.

:class:`Plant` steps every machine on a shared simulated clock (one telemetry message per machine
every ``telemetry_interval_s``, each machine at its own fixed offset inside the interval) and yields
messages in time order. Same factory + seed => the same messages, byte for byte once encoded.

Life cycle of one machine::

    running --failure(mode)--> down (repair) --maintenance(kind=repair)--> running
    running --order/schedule--> maintenance --maintenance(kind=...)--> running

Events: a ``failure`` event (mode = ground truth) with a ``state`` event ``down``; a ``state``
``maintenance`` event when planned work starts; a ``maintenance`` event (kind, duration_s) when work
ends, followed by ``state`` ``running``. No telemetry is sent while a machine is down or in
maintenance. :meth:`Plant.apply_maintenance` is the hook the alert side uses (through the MQTT
command topic, see :mod:`simulator.mqtt`).
"""

from __future__ import annotations

import gc
import logging
import math
import os
import pickle
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from forewarn.contract import MAINTENANCE_KINDS, Event, Message, Telemetry, encode, topic_for
from forewarn.errors import NotFound
from forewarn.factory import Factory, TypeConfig
from simulator.draws import Draws, machine_rng
from simulator.faults import Malformed, corrupt
from simulator.physics import Model, make_model

log = logging.getLogger(__name__)

INSPECTION_FINDS = 0.3  # an inspection renews every component degraded at least this far
DRIFT_REVERSION_DAYS = 20.0  # sensor drift is a random walk pulled back on this time scale
REPAIR_TIME_SPREAD = (0.8, 1.4)  # actual repair time / nominal repair_hours


@dataclass(frozen=True, slots=True)
class Truth:
    """One ground-truth record: a failure (with mode) or a completed maintenance."""

    machine: str
    type_id: str
    ts: datetime
    event: str  # "failure" | "maintenance"
    mode: str | None = None
    kind: str | None = None
    trigger: str | None = None  # maintenance: "failure" | "schedule" | "order"
    degradation: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class _Order:
    at_h: float
    kind: str
    alert_id: int | None


class Unit:
    """One machine: its physics, random streams, sensor post-processing and life-cycle state."""

    def __init__(
        self, plant: Plant, machine_id: str, site: str, cfg: TypeConfig, seed: int
    ) -> None:
        self.id = machine_id
        self.site = site
        self.cfg = cfg
        self.plant = plant
        self.draws = Draws(machine_rng(seed, machine_id, 0))
        self.faults = Draws(machine_rng(seed, machine_id, 1))
        self.offset_s = int(self.draws.uniform() * plant.interval_s)
        self.model: Model = make_model(cfg, self.draws)
        self.seq = plant.seq_base
        self.state = "running"
        self.busy_until_h = 0.0
        self.busy_start_h = 0.0
        self.busy_kind = ""
        self.busy_trigger = ""
        self.busy_renew: tuple[str, ...] = ()
        self.busy_alert: int | None = None
        self.orders: list[_Order] = []
        self.hours_since_pm = self.draws.uniform(0.0, cfg.preventive_every_h or 1.0)
        self.random_p = 1.0 - math.exp(
            -plant.dt_h / float(cfg.params.get("random_mtbf_h", math.inf))
        )
        self.names = [s.name for s in cfg.sensors]
        self.noise_sd = [s.noise for s in cfg.sensors]
        self.drift_sd = [s.drift for s in cfg.sensors]
        self.lo = [s.min for s in cfg.sensors]
        self.hi = [s.max for s in cfg.sensors]
        self.scale = [10.0**s.decimals for s in cfg.sensors]
        self.drift = [0.0] * len(cfg.sensors)
        self.next_drift_h = 0.0

    # -- events ---------------------------------------------------------------------------------
    def _event(self, ts: datetime, event: str, **kw: object) -> Event:
        self.seq += 1
        return Event(self.site, self.id, ts, self.seq, event, **kw)  # type: ignore[arg-type]

    def _start_work(
        self,
        out: list[Message | Malformed],
        ts: datetime,
        t_h: float,
        kind: str,
        hours: float,
        trigger: str,
        renew: tuple[str, ...],
        alert: int | None,
    ) -> None:
        self.state = "down" if trigger == "failure" else "maintenance"
        self.busy_start_h, self.busy_until_h = t_h, t_h + hours
        self.busy_kind, self.busy_trigger, self.busy_renew, self.busy_alert = (
            kind,
            trigger,
            renew,
            alert,
        )
        if trigger != "failure":
            detail: dict[str, object] = {"kind": kind}
            if alert is not None:
                detail["alert_id"] = alert  # the plant's acknowledgement of the order
            out.append(self._event(ts, "state", state="maintenance", detail=detail))

    def _finish_work(self, out: list[Message | Malformed], ts: datetime, t_h: float) -> None:
        model = self.model
        # Orders that arrived while the machine was already down or being worked on are served
        # by this work (the crew was there anyway): their kinds widen what is renewed, and their
        # alert ids are reported with the maintenance, so no order goes unanswered.
        served = [o for o in self.orders if o.at_h <= t_h]
        if self.busy_kind == "inspection":
            renew = tuple(n for n, d in model.degradation().items() if d >= INSPECTION_FINDS)
        else:
            renew = self.busy_renew
        if any(o.kind in ("preventive", "repair") for o in served):
            renew = tuple(model.degradation())
        for name in renew:
            model.renew(name)
        if self.busy_kind in ("preventive", "repair") and self.busy_trigger != "failure":
            self.drift = [0.0] * len(self.drift)  # recalibrated
        if self.busy_kind == "preventive":
            self.hours_since_pm = 0.0
        duration_s = round((t_h - self.busy_start_h) * 3600.0, 3)
        detail: dict[str, object] = {"trigger": self.busy_trigger, "renewed": list(renew)}
        if self.busy_alert is not None:
            detail["alert_id"] = self.busy_alert
        served_ids = [o.alert_id for o in served if o.alert_id is not None]
        if served_ids:
            detail["alert_ids"] = served_ids
        out.append(
            self._event(
                ts, "maintenance", kind=self.busy_kind, duration_s=duration_s, detail=detail
            )
        )
        out.append(self._event(ts, "state", state="running"))
        self.plant.truth.append(
            Truth(
                self.id,
                self.cfg.id,
                ts,
                "maintenance",
                kind=self.busy_kind,
                trigger=self.busy_trigger,
            )
        )
        self.state = "running"
        self.orders = [o for o in self.orders if o.at_h > t_h]  # served by this work (above)

    # -- one tick ---------------------------------------------------------------------------------
    def tick(self, out: list[Message | Malformed], ts: datetime, t_h: float) -> None:
        dt_h = self.plant.dt_h
        if self.state != "running":
            if t_h >= self.busy_until_h:
                self._finish_work(out, ts, t_h)
            return
        costs = self.cfg.costs
        if self.orders and self.orders[0].at_h <= t_h:
            o = self.orders.pop(0)
            hours = {
                "inspection": self.plant.factory.inspection_hours,
                "preventive": costs.planned_hours,
                "repair": costs.repair_hours,
            }[o.kind]
            renew = tuple(self.model.degradation()) if o.kind != "inspection" else ()
            self._start_work(out, ts, t_h, o.kind, hours, "order", renew, o.alert_id)
            return
        model = self.model
        mode = model.advance(dt_h, t_h)
        if mode is None and self.draws.uniform() < self.random_p:
            mode = "random"
        self.hours_since_pm += dt_h
        out.append(self._telemetry(ts, t_h))
        if mode is not None:
            degradation = {k: round(v, 4) for k, v in model.degradation().items()}
            out.append(self._event(ts, "failure", mode=mode, detail={"degradation": degradation}))
            out.append(self._event(ts, "state", state="down"))
            self.plant.truth.append(
                Truth(self.id, self.cfg.id, ts, "failure", mode=mode, degradation=degradation)
            )
            hours = costs.repair_hours * self.draws.uniform(*REPAIR_TIME_SPREAD)
            renew = (mode,) if mode != "random" else ()
            self._start_work(out, ts, t_h, "repair", hours, "failure", renew, None)
        elif self.cfg.preventive_every_h and self.hours_since_pm >= self.cfg.preventive_every_h:
            self._start_work(
                out,
                ts,
                t_h,
                "preventive",
                costs.planned_hours,
                "schedule",
                tuple(model.degradation()),
                None,
            )

    def _telemetry(self, ts: datetime, t_h: float) -> Telemetry | Malformed:
        model = self.model
        clean = model.clean(t_h)
        n = len(clean)
        noise = self.draws.normals(n)
        drift = self.drift
        if t_h >= self.next_drift_h:  # drift moves once per simulated hour
            steps = self.draws.normals(n)
            keep = 1.0 - 1.0 / (24.0 * DRIFT_REVERSION_DAYS)
            step_h = math.sqrt(1.0 / 24.0)
            self.drift = drift = [
                x * keep + sd * step_h * z if sd else x
                for x, sd, z in zip(drift, self.drift_sd, steps, strict=True)
            ]
            self.next_drift_h = t_h + 1.0
        values: dict[str, float | None] = {}
        floor = math.floor
        for name, c, sd, z, dr, lo, hi, sc in zip(
            self.names,
            clean,
            self.noise_sd,
            noise,
            drift,
            self.lo,
            self.hi,
            self.scale,
            strict=True,
        ):
            v = floor((c + sd * z + dr) * sc + 0.5) / sc  # rounded to the sensor's decimals
            values[name] = lo if v < lo else hi if v > hi else v
        faults = self.faults
        rate = self.plant.dropout_rate * n
        if rate and faults.uniform() < rate:
            values[self.names[min(int(faults.uniform() * n), n - 1)]] = None
        self.seq += 1
        msg = Telemetry(self.site, self.id, ts, self.seq, values, model.regime, model.settings)
        if self.plant.bad_rate and faults.uniform() < self.plant.bad_rate:
            return corrupt(msg, faults, self.cfg)
        return msg


class Plant:
    """The simulated plant; iterate :meth:`run` to advance the clock and get messages."""

    def __init__(
        self,
        factory: Factory,
        seed: int,
        *,
        bad_rate: float | None = None,
        dropout_rate: float | None = None,
        seq_base: int = 0,
    ) -> None:
        self.factory = factory
        self.seed = seed
        # a resumed plant continues above the sequence numbers it already sent
        self.seq_base = seq_base
        self.interval_s = factory.telemetry_interval_s
        self.dt_h = self.interval_s / 3600.0
        self.bad_rate = factory.bad_rate if bad_rate is None else bad_rate
        self.dropout_rate = factory.dropout_rate if dropout_rate is None else dropout_rate
        self.truth: list[Truth] = []
        self._tick = 0
        # messages of the current tick not yet handed out: part of the state, so a plant saved
        # mid-tick resumes with exactly the next message
        self.pending: deque[Message | Malformed] = deque()
        units = [Unit(self, m.id, m.site_id, cfg, seed) for m, cfg in factory.machines()]
        self.units = sorted(units, key=lambda u: (u.offset_s, u.id))
        self._by_id = {u.id: u for u in units}

    @property
    def now(self) -> datetime:
        """The simulated clock: the start of the next tick to be produced."""
        return self.factory.start + timedelta(seconds=self._tick * self.interval_s)

    def apply_maintenance(
        self, machine_id: str, kind: str, at: datetime | None = None, alert_id: int | None = None
    ) -> None:
        """Order maintenance (inspection, preventive, repair) on a machine from ``at`` (default now).

        The machine stops at its first tick at or after ``at`` (unless it is already down), the work
        renews its degraded components, and a ``maintenance`` event is emitted when it ends.
        """
        if kind not in MAINTENANCE_KINDS:
            raise ValueError(f"maintenance kind must be one of {', '.join(MAINTENANCE_KINDS)}")
        unit = self._by_id.get(machine_id)
        if unit is None:
            raise NotFound(f"machine {machine_id!r} is not in this plant")
        at_h = ((at or self.now) - self.factory.start).total_seconds() / 3600.0
        unit.orders.append(_Order(at_h, kind, alert_id))
        unit.orders.sort(key=lambda o: o.at_h)

    def degradation(self, machine_id: str) -> dict[str, float]:
        """Current degradation per component (1 = failure) of one machine: the health ground truth."""
        return self._by_id[machine_id].model.degradation()

    def run(self, hours: float) -> Iterator[Message | Malformed]:
        """Advance the clock by ``hours`` and yield every message in time order."""
        end = self._tick + math.ceil(hours * 3600.0 / self.interval_s - 1e-9)
        start, interval = self.factory.start, self.interval_s
        pending = self.pending
        while True:
            while pending:
                yield pending.popleft()
            if self._tick >= end:
                return
            base_s = self._tick * interval
            out: list[Message | Malformed] = []
            for unit in self.units:
                t_s = base_s + unit.offset_s
                unit.tick(out, start + timedelta(seconds=t_s), t_s / 3600.0)
            self._tick += 1
            pending.extend(out)

    def unsend(self, item: Message | Malformed) -> None:
        """Give back a message taken from :meth:`run` but not sent: it comes out first next time."""
        self.pending.appendleft(item)

    # -- exact resume -------------------------------------------------------------------------
    def fingerprint(self) -> tuple[int, tuple[str, ...]]:
        return self.seed, tuple(sorted(self._by_id))

    def save(self, path: Path) -> None:
        """Write the whole plant (clock, every machine's wear, faults, work and orders, sequence
        numbers, random streams, unsent messages) atomically to ``path``; ground truth is not kept."""
        truth, self.truth = self.truth, []
        try:
            data = pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            self.truth = truth
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    @classmethod
    def restore(cls, path: Path, factory: Factory, seed: int) -> Plant | None:
        """The plant saved at ``path`` if it is this factory's and seed's, else None (logged)."""
        try:
            plant = pickle.loads(path.read_bytes())  # noqa: S301 - our own state file
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError) as exc:
            log.warning("cannot resume from %s (%s); starting the plant afresh", path, exc)
            return None
        expected = (seed, tuple(sorted(m.id for m, _ in factory.machines())))
        if not isinstance(plant, cls) or plant.fingerprint() != expected:
            log.warning("%s holds another plant (seed or machines differ); not resuming", path)
            return None
        return plant


def encode_stream(items: Iterable[Message | Malformed], root: str) -> Iterator[tuple[str, bytes]]:
    """(topic, payload bytes) for each message, malformed ones as their raw bad bytes."""
    for item in items:
        if isinstance(item, Malformed):
            yield topic_for(item.site, item.machine, "telemetry", root), item.payload
        else:
            kind = "telemetry" if isinstance(item, Telemetry) else "event"
            yield topic_for(item.site, item.machine, kind, root), encode(item)


@dataclass(slots=True)
class History:
    messages: list[Message]
    truth: list[Truth]

    @property
    def failures(self) -> list[Truth]:
        return [t for t in self.truth if t.event == "failure"]


def run_history(factory: Factory, hours: float, seed: int) -> History:
    """Simulate ``hours`` in memory (no drop-in malformed bytes): messages plus ground truth."""
    plant = Plant(factory, seed, bad_rate=0.0)
    # Millions of new container objects, none of them cyclic: the cyclic GC would rescan them
    # again and again (about 12% of the run), so it is paused while the history is built.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        messages = [m for m in plant.run(hours) if not isinstance(m, Malformed)]
    finally:
        if was_enabled:
            gc.enable()
    return History(messages, plant.truth)


def simulate_history(factory: Factory, hours: float, seed: int) -> list[Message]:
    """The clean message history of ``hours`` of simulated operation, in time order."""
    return run_history(factory, hours, seed).messages


def failures_in(messages: Iterable[Message]) -> list[Event]:
    """The failure events of a message history (their ``mode`` is the ground truth)."""
    return [m for m in messages if isinstance(m, Event) and m.event == "failure"]

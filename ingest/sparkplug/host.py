"""A Sparkplug B host application's view of its edge nodes, turned into contract messages.

:class:`SparkplugHost` keeps, per edge node, what its last births declared (aliases, data types,
units, devices), the last ``seq`` and the ``bdSeq`` of its session. Each incoming message becomes
an :class:`Outcome`: contract messages (readings and state events) that went through the same
:func:`forewarn.contract.validate` as JSON telemetry, the birth certificates' metric catalogue, or
one dead-letter reason; and whether to ask the node for a rebirth (a ``seq`` gap, an unknown alias,
data from a node whose birth this host has not seen).

Natural key of a Sparkplug reading: (machine, ``seq``, ts) with ``seq = ts_ms * 256 + sparkplug_seq``:
the sample time in milliseconds and the node's message counter, so a redelivered message maps to
the same rows (a no-op) and two messages of the same millisecond stay apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from forewarn.assets import MachineSpec, SensorSpec
from forewarn.contract import (
    Event,
    Limits,
    Message,
    Reason,
    Telemetry,
    encode,
    topic_for,
    validate,
)
from forewarn.errors import ContractError
from forewarn.storage.sparkplug import SparkplugMetricRow
from ingest.sparkplug.codec import (
    BD_SEQ,
    UNKNOWN_ALIAS,
    SpbMetric,
    SpbPayload,
    SpbTopic,
    decode_payload,
    is_numeric,
    parse_topic,
)

SEQ_MODULO = 256
CONTROL_PREFIXES = ("Node Control/", "Device Control/", "Properties/", "Node Info/")
OPEN_BOUND = 1e300  # a sensor registered from a birth without an engineering range is unbounded


@dataclass(frozen=True, slots=True)
class DeviceRegistration:
    """A device first seen in a birth, to register (FOREWARN_SPARKPLUG__AUTO_REGISTER)."""

    machine: str
    site: str
    type_id: str
    sensors: tuple[SensorSpec, ...]
    born: datetime | None = None  # the birth's time: sensors it adds hold from then (a version)


@dataclass(slots=True)
class Outcome:
    messages: list[Message] = field(default_factory=list)
    births: list[SparkplugMetricRow] = field(default_factory=list)
    registrations: list[DeviceRegistration] = field(default_factory=list)
    dead: tuple[str, str] | None = None  # (reason, detail)
    rebirth: SpbTopic | None = None  # ask this node for a rebirth


@dataclass(slots=True)
class _Node:
    bd_seq: int | None = None
    seq: int | None = None
    names: dict[tuple[str, str], int] = field(default_factory=dict)  # (device, name) -> datatype
    aliases: dict[int, tuple[str, str]] = field(default_factory=dict)  # alias -> (device, name)
    devices: set[str] = field(default_factory=set)
    node_machine: bool = False  # the node itself carries sensor metrics


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class SparkplugHost:
    """Sparkplug state per edge node; :meth:`handle` is called on ingest's network thread only."""

    def __init__(
        self,
        groups: list[str],
        *,
        root: str,
        limits: Limits,
        auto_register: bool,
        machine_template: str = "{device}",
        rebirth_interval_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.groups = set(groups)
        self._root = root
        self._limits = replace(limits, auto_register=auto_register)
        self._template = machine_template
        self._rebirth_interval_s = rebirth_interval_s
        self._monotonic = monotonic
        self._nodes: dict[tuple[str, str], _Node] = {}
        self._asked: dict[tuple[str, str], float] = {}
        self.rebirths_requested = 0

    # -- mapping ----------------------------------------------------------------------------
    def machine_of(self, t: SpbTopic, device: str | None = None) -> str:
        dev = device if device is not None else t.device
        return self._template.format(group=t.group, edge=t.edge, device=dev or t.edge)

    @staticmethod
    def sensor_of(name: str, spec: MachineSpec | None) -> str | None:
        """The machine type's sensor a metric name stands for (exact name, then its last segment)."""
        if name == BD_SEQ or name.startswith(CONTROL_PREFIXES):
            return None
        short = name.rsplit("/", 1)[-1]
        if spec is None or not spec.bounds:  # unregistered (auto-registered) machine: keep all
            return short
        if name in spec.bounds:
            return name
        return short if short in spec.bounds else None

    # -- entry point --------------------------------------------------------------------------
    def handle(
        self, topic: str, payload: bytes, specs: Mapping[str, MachineSpec], now: datetime
    ) -> Outcome:
        """Decode one Sparkplug message; ContractError (dead letter) for a malformed one."""
        if len(payload) > self._limits.max_bytes:
            raise ContractError(
                Reason.OVERSIZED.value, f"{len(payload)} bytes > {self._limits.max_bytes}"
            )
        t = parse_topic(topic)
        if t is None or t.group not in self.groups or t.kind in ("NCMD", "DCMD"):
            return Outcome()  # host STATE, commands (ours included), groups we do not own
        p = decode_payload(payload)
        key = (t.group, t.edge)
        if t.kind == "NBIRTH":
            return self._nbirth(t, p, specs, now)
        node = self._nodes.get(key)
        out = Outcome()
        if node is None:
            node = self._nodes[key] = _Node()
            self._ask(t, out)  # data from a node whose birth we missed (e.g. ingest restarted)
        if t.kind == "NDEATH":
            return self._ndeath(t, p, node, specs, now)
        if p.seq is not None:
            if node.seq is not None and p.seq != (node.seq + 1) % SEQ_MODULO:
                self._ask(t, out)  # a lost message: the node's state may have moved on
            node.seq = p.seq
        if t.kind == "DBIRTH":
            self._dbirth(t, p, node, specs, now, out)
        elif t.kind in ("NDATA", "DDATA"):
            self._data(t, p, node, specs, now, out)
        elif t.kind == "DDEATH":
            assert t.device is not None
            node.devices.discard(t.device)
            self._state(t, "down", p, specs, now, out, machine=self.machine_of(t))
        return out

    # -- message kinds ------------------------------------------------------------------------
    def _nbirth(
        self, t: SpbTopic, p: SpbPayload, specs: Mapping[str, MachineSpec], now: datetime
    ) -> Outcome:
        node = _Node(seq=p.seq)
        for m in p.metrics:
            if m.name == BD_SEQ and isinstance(m.value, float):
                node.bd_seq = int(m.value)
        self._nodes[(t.group, t.edge)] = node
        self._asked.pop((t.group, t.edge), None)
        out = Outcome()
        self._birth(t, "", p, node, specs, now, out)
        return out

    def _dbirth(
        self,
        t: SpbTopic,
        p: SpbPayload,
        node: _Node,
        specs: Mapping[str, MachineSpec],
        now: datetime,
        out: Outcome,
    ) -> None:
        assert t.device is not None
        node.devices.add(t.device)
        self._birth(t, t.device, p, node, specs, now, out)

    def _birth(
        self,
        t: SpbTopic,
        device: str,
        p: SpbPayload,
        node: _Node,
        specs: Mapping[str, MachineSpec],
        now: datetime,
        out: Outcome,
    ) -> None:
        machine = self.machine_of(t, device or None)
        spec = specs.get(machine)
        born = _from_ms(p.timestamp_ms) if p.timestamp_ms is not None else now
        values: dict[str, float | None] = {}
        sensors: dict[str, SensorSpec] = {}
        for m in p.metrics:
            if m.name is None:
                continue
            node.names[(device, m.name)] = m.datatype
            if m.alias is not None:
                node.aliases[m.alias] = (device, m.name)
            sensor = self.sensor_of(m.name, spec) if is_numeric(m.datatype) else None
            if sensor is not None:
                values[sensor] = m.value if isinstance(m.value, float) else None
                low = m.low if m.low is not None else -OPEN_BOUND
                high = m.high if m.high is not None else OPEN_BOUND
                sensors[sensor] = SensorSpec(sensor, m.unit or "", low, high)
            out.births.append(
                SparkplugMetricRow(
                    t.group,
                    t.edge,
                    device,
                    m.name,
                    m.alias,
                    m.datatype_name,
                    m.unit,
                    machine,
                    sensor,
                    born,
                )
            )
        if not values:
            return  # a node or device without sensor metrics is not a machine
        if not device:
            node.node_machine = True
        if (spec is None or not spec.bounds) and self._limits.auto_register:
            site = spec.site_id if spec is not None else t.group
            reg = DeviceRegistration(
                machine, site, f"sparkplug:{machine}", tuple(sensors.values()), born
            )
            out.registrations.append(reg)
            # validate this birth as the registered machine will be (its sensors, their bounds)
            specs = {
                **specs,
                machine: MachineSpec(
                    site, reg.type_id, {s.name: (s.min, s.max) for s in reg.sensors}
                ),
            }
        # a birth is a snapshot at its own timestamp (the metrics' may be their last change)
        stamped = {_ms(born): values}
        self._readings(t, machine, stamped, p, specs, now, out)
        self._state(t, "running", p, specs, now, out, machine=machine)

    def _data(
        self,
        t: SpbTopic,
        p: SpbPayload,
        node: _Node,
        specs: Mapping[str, MachineSpec],
        now: datetime,
        out: Outcome,
    ) -> None:
        device = t.device or ""
        machine = self.machine_of(t)
        spec = specs.get(machine)
        by_ts: dict[int, dict[str, float | None]] = {}
        default_ms = p.timestamp_ms if p.timestamp_ms is not None else _ms(now)
        for m in p.metrics:
            name = self._name(m, node, device)
            if name is None:
                out.dead = (UNKNOWN_ALIAS, f"alias {m.alias} is in no birth of {t.edge}")
                self._ask(t, out)
                out.messages.clear()
                return
            datatype = m.datatype or node.names.get((device, name), 0)
            if datatype and not is_numeric(datatype):
                continue
            if m.value is not None and not isinstance(m.value, float):
                continue
            sensor = self.sensor_of(name, spec)
            if sensor is None:
                continue
            ms = m.timestamp_ms if m.timestamp_ms is not None else default_ms
            by_ts.setdefault(ms, {})[sensor] = m.value
        self._readings(t, machine, by_ts, p, specs, now, out)

    def _ndeath(
        self,
        t: SpbTopic,
        p: SpbPayload,
        node: _Node,
        specs: Mapping[str, MachineSpec],
        now: datetime,
    ) -> Outcome:
        out = Outcome()
        bd = next(
            (int(m.value) for m in p.metrics if m.name == BD_SEQ and isinstance(m.value, float)),
            None,
        )
        if node.bd_seq is not None and bd is not None and bd != node.bd_seq:
            return out  # the will of an older session, arriving after the new birth: stale
        machines = [self.machine_of(t, d) for d in sorted(node.devices)]
        if node.node_machine:
            machines.append(self.machine_of(t, None))
        death = replace(
            p, timestamp_ms=_ms(now), seq=None
        )  # a will's timestamp is its connect time
        for machine in machines:
            self._state(t, "down", death, specs, now, out, machine=machine, bd_seq=bd)
        del self._nodes[(t.group, t.edge)]
        return out

    # -- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _name(m: SpbMetric, node: _Node, device: str) -> str | None:
        if m.name is not None:
            return m.name
        if m.alias is not None:
            found = node.aliases.get(m.alias)
            if found is not None and found[0] == device:
                return found[1]
        return None

    def _ask(self, t: SpbTopic, out: Outcome) -> None:
        key = (t.group, t.edge)
        now = self._monotonic()
        if now - self._asked.get(key, -1e18) < self._rebirth_interval_s:
            return  # asked a moment ago: let the node answer
        self._asked[key] = now
        self.rebirths_requested += 1
        out.rebirth = SpbTopic(t.group, "NCMD", t.edge)

    def _check(
        self, machine: str, msg: Message, specs: Mapping[str, MachineSpec], now: datetime
    ) -> Message:
        """The same validation as JSON telemetry (bounds, sensors, timestamps, registration)."""
        spec = specs.get(machine)
        limits = self._limits
        if spec is not None and not spec.bounds:  # auto-registered earlier: unchecked
            specs, limits = {}, replace(limits, auto_register=True)
        site = spec.site_id if spec is not None else msg.site
        kind = "telemetry" if isinstance(msg, Telemetry) else "event"
        msg = replace(msg, site=site)
        return validate(
            topic_for(site, machine, kind, self._root),
            encode(msg),
            specs,
            now=now,
            limits=limits,
            root=self._root,
        )

    def _readings(
        self,
        t: SpbTopic,
        machine: str,
        by_ts: dict[int, dict[str, float | None]],
        p: SpbPayload,
        specs: Mapping[str, MachineSpec],
        now: datetime,
        out: Outcome,
    ) -> None:
        spb_seq = (p.seq or 0) % SEQ_MODULO
        for ms, values in sorted(by_ts.items()):
            if not values:
                continue
            msg = Telemetry(t.group, machine, _from_ms(ms), ms * SEQ_MODULO + spb_seq, values)
            self._add(out, machine, msg, specs, now)

    def _state(
        self,
        t: SpbTopic,
        state: str,
        p: SpbPayload,
        specs: Mapping[str, MachineSpec],
        now: datetime,
        out: Outcome,
        *,
        machine: str,
        bd_seq: int | None = None,
    ) -> None:
        if machine not in specs and not self._limits.auto_register:
            return  # its data is dead-lettered as unknown_machine; no state for it either
        ms = p.timestamp_ms if p.timestamp_ms is not None else _ms(now)
        detail: dict[str, object] = {"source": "sparkplug", "edge": f"{t.group}/{t.edge}"}
        if bd_seq is not None:
            detail["bdSeq"] = bd_seq
        seq = ms * SEQ_MODULO + (p.seq or 0) % SEQ_MODULO
        ev = Event(t.group, machine, _from_ms(ms), seq, "state", state=state, detail=detail)
        self._add(out, machine, ev, specs, now)

    def _add(
        self,
        out: Outcome,
        machine: str,
        msg: Message,
        specs: Mapping[str, MachineSpec],
        now: datetime,
    ) -> None:
        """Validate and keep ``msg``; one rejected part dead-letters the whole MQTT message,
        as for JSON telemetry (the births it declared are still recorded)."""
        if out.dead is not None:
            return
        try:
            out.messages.append(self._check(machine, msg, specs, now))
        except ContractError as exc:
            out.dead = (exc.reason, exc.detail)
            out.messages.clear()

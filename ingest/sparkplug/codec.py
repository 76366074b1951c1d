"""Sparkplug B topics and payloads: parsed with the Tahu protobuf definition, never by hand.

Topics are ``spBv1.0/{group}/{NBIRTH|NDATA|NDEATH|DBIRTH|DDATA|DDEATH|NCMD|DCMD}/{edge}[/{device}]``
and ``spBv1.0/STATE/{host}``. :func:`decode_payload` turns the protobuf into plain dataclasses
(signed integers restored, booleans as numbers, the ``engUnit`` property as the unit);
:func:`rebirth_request` builds the NCMD a host sends to ask an edge node for its births again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

from forewarn.contract import Reason
from forewarn.errors import ContractError
from ingest.sparkplug import sparkplug_b_pb2 as pb

NAMESPACE = "spBv1.0"
NODE_KINDS = ("NBIRTH", "NDATA", "NDEATH", "NCMD")
DEVICE_KINDS = ("DBIRTH", "DDATA", "DDEATH", "DCMD")
BD_SEQ = "bdSeq"
REBIRTH = "Node Control/Rebirth"
UNIT_PROPERTIES = ("engUnit", "engUnits", "EngUnit", "unit", "units")
LOW_PROPERTIES = ("engLow", "EngLow")  # Ignition's engineering range of a tag
HIGH_PROPERTIES = ("engHigh", "EngHigh")

# Reason codes of Sparkplug dead letters: the contract's one list (README, "Sparkplug B").
NOT_PROTOBUF = Reason.NOT_PROTOBUF.value
UNKNOWN_ALIAS = Reason.UNKNOWN_ALIAS.value
BAD_TOPIC = Reason.BAD_TOPIC.value

_SIGNED_BITS: dict[int, int] = {pb.Int8: 8, pb.Int16: 16, pb.Int32: 32, pb.Int64: 64}
_NUMERIC: set[int] = {
    pb.Int8,
    pb.Int16,
    pb.Int32,
    pb.Int64,
    pb.UInt8,
    pb.UInt16,
    pb.UInt32,
    pb.UInt64,
    pb.Float,
    pb.Double,
    pb.Boolean,
}


@dataclass(frozen=True, slots=True)
class SpbTopic:
    group: str
    kind: str
    edge: str
    device: str | None = None


@dataclass(frozen=True, slots=True)
class SpbMetric:
    name: str | None
    alias: int | None
    timestamp_ms: int | None
    datatype: int  # pb.DataType; 0 (Unknown) when a data message left it out
    value: float | str | None  # numbers (booleans as 0/1) as float, text as str, else None
    unit: str | None = None
    low: float | None = None  # engineering range, when the birth declares one
    high: float | None = None

    @property
    def datatype_name(self) -> str:
        return pb.DataType.Name(self.datatype) if self.datatype in pb.DataType.values() else "?"


@dataclass(frozen=True, slots=True)
class SpbPayload:
    timestamp_ms: int | None
    seq: int | None
    metrics: tuple[SpbMetric, ...]


def parse_topic(topic: str) -> SpbTopic | None:
    """The parts of a Sparkplug topic; None for the host ``STATE`` topic; ContractError if malformed."""
    parts = topic.split("/")
    if len(parts) >= 2 and parts[0] == NAMESPACE and parts[1] == "STATE":
        return None
    ok = len(parts) in (4, 5) and parts[0] == NAMESPACE and all(parts[1:])
    kind = parts[2] if ok else ""
    if not ok or (len(parts) == 4) != (kind in NODE_KINDS) or kind not in NODE_KINDS + DEVICE_KINDS:
        raise ContractError(
            BAD_TOPIC, f"topic {topic[:200]!r} is not {NAMESPACE}/<group>/<type>/<edge>[/<device>]"
        )
    return SpbTopic(parts[1], kind, parts[3], parts[4] if len(parts) == 5 else None)


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _value(m: Any, datatype: int) -> float | str | None:
    if m.is_null:
        return None
    field = m.WhichOneof("value")
    if field is None:
        return None
    raw = getattr(m, field)
    if field in ("int_value", "long_value"):
        bits = _SIGNED_BITS.get(datatype)
        return float(_signed(raw, bits) if bits else raw)
    if field in ("float_value", "double_value"):
        return float(raw)
    if field == "boolean_value":
        return 1.0 if raw else 0.0
    if field == "string_value":
        return str(raw)
    return None  # bytes, datasets, templates, extensions: not sensor values


def _properties(m: Any) -> dict[str, str | float]:
    """A metric's text and number properties (``engUnit``, ``engLow``, ``engHigh``, ...)."""
    if not m.HasField("properties"):
        return {}
    out: dict[str, str | float] = {}
    props = m.properties
    for key, val in zip(props.keys, props.values, strict=False):
        field = val.WhichOneof("value")
        if field == "string_value":
            out[key] = str(val.string_value)
        elif field in ("int_value", "long_value", "float_value", "double_value"):
            raw = getattr(val, field)
            bits = _SIGNED_BITS.get(val.type)
            out[key] = float(_signed(raw, bits) if bits and field.endswith("int_value") else raw)
    return out


def _first(props: dict[str, str | float], keys: tuple[str, ...], kind: type) -> Any:
    return next((props[k] for k in keys if isinstance(props.get(k), kind)), None)


def decode_payload(raw: bytes) -> SpbPayload:
    """Decode a Sparkplug B protobuf payload; ContractError(not_protobuf) if it is not one."""
    msg = pb.Payload()
    try:
        msg.ParseFromString(raw)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise ContractError(NOT_PROTOBUF, f"not a Sparkplug B payload: {exc}"[:200]) from None
    metrics = []
    for m in msg.metrics:
        props = _properties(m)
        metrics.append(
            SpbMetric(
                name=m.name if m.HasField("name") else None,
                alias=m.alias if m.HasField("alias") else None,
                timestamp_ms=m.timestamp if m.HasField("timestamp") else None,
                datatype=m.datatype,
                value=_value(m, m.datatype),
                unit=_first(props, UNIT_PROPERTIES, str),
                low=_first(props, LOW_PROPERTIES, float),
                high=_first(props, HIGH_PROPERTIES, float),
            )
        )
    return SpbPayload(
        timestamp_ms=msg.timestamp if msg.HasField("timestamp") else None,
        seq=msg.seq if msg.HasField("seq") else None,
        metrics=tuple(metrics),
    )


def is_numeric(datatype: int) -> bool:
    return datatype in _NUMERIC


def rebirth_request(now_ms: int) -> bytes:
    """The NCMD payload that asks an edge node to publish its births again."""
    msg = pb.Payload(timestamp=now_ms)
    metric = msg.metrics.add()
    metric.name = REBIRTH
    metric.timestamp = now_ms
    metric.datatype = pb.Boolean
    metric.boolean_value = True
    return bytes(msg.SerializeToString())


def ncmd_topic(group: str, edge: str) -> str:
    return f"{NAMESPACE}/{group}/NCMD/{edge}"


def state_topic(host_id: str) -> str:
    """Where a host application announces whether it is online (retained)."""
    return f"{NAMESPACE}/STATE/{host_id}"


def state_payload(online: bool, timestamp_ms: int) -> bytes:
    """The STATE message of Sparkplug 3.0: JSON ``{"online": bool, "timestamp": ms}``; the will
    and the online message carry the same timestamp."""
    return json.dumps({"online": online, "timestamp": timestamp_ms}).encode()


def subscriptions(groups: list[str]) -> list[str]:
    """Topic filters for the configured Sparkplug groups."""
    return [f"{NAMESPACE}/{g}/#" for g in groups]

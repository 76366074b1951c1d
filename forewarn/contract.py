"""The message contract: versioned topics, telemetry and event payloads, and their validation.

Topics: ``forewarn/v1/{site}/{machine}/telemetry`` and ``forewarn/v1/{site}/{machine}/event``.
:func:`validate` is pure (time is passed in) and raises only :class:`~forewarn.errors.ContractError`,
whose ``reason`` is one of :class:`Reason` and is stored with the dead letter.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from forewarn.assets import MachineSpec
from forewarn.errors import ContractError

SCHEMA_VERSION = 1
TOPIC_ROOT = "forewarn/v1"
MAX_SEQ = 2**63 - 1
EVENT_KINDS = ("failure", "maintenance", "state")
MAINTENANCE_KINDS = ("repair", "preventive", "inspection")
MACHINE_STATES = ("running", "idle", "down", "maintenance")
_NAME_MAX = 128


class Reason(StrEnum):
    """Why a message was rejected; stable codes, counted and stored with each dead letter."""

    OVERSIZED = "oversized"
    BAD_TOPIC = "bad_topic"
    NOT_JSON = "not_json"
    SCHEMA = "schema"
    WRONG_TYPE = "wrong_type"
    NON_FINITE = "non_finite"
    OUT_OF_BOUNDS = "out_of_bounds"
    UNKNOWN_SENSOR = "unknown_sensor"
    UNKNOWN_FAILURE_MODE = "unknown_failure_mode"
    OUT_OF_RANGE_TIMESTAMP = "out_of_range_timestamp"
    UNKNOWN_MACHINE = "unknown_machine"
    TOPIC_MISMATCH = "topic_mismatch"
    # Sparkplug B (ingest/sparkplug): a payload that is not its protobuf; an alias no birth declared
    NOT_PROTOBUF = "not_protobuf"
    UNKNOWN_ALIAS = "unknown_alias"
    # decided by the writer against what is stored, not by validate()
    SEQ_CONFLICT = "seq_conflict"
    STALE_SEQ = "stale_seq"
    DB_REJECTED = "db_rejected"  # the database refused the row (e.g. a NUL character)
    INTERNAL = "internal"  # validation itself failed: a bug, logged with its traceback


MIN_TS = datetime(2000, 1, 1, tzinfo=UTC)
# RFC 3339 date-time (section 5.6), nothing looser: no week dates, no basic format, no missing
# seconds or offset. datetime.fromisoformat alone accepts all of those.
_RFC3339 = re.compile(
    r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)\Z"
)


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int = 64 * 1024
    max_future_s: float = 300.0
    auto_register: bool = False
    min_ts: datetime = MIN_TS  # older event times are out_of_range_timestamp


@dataclass(frozen=True, slots=True)
class Telemetry:
    site: str
    machine: str
    ts: datetime
    seq: int
    values: dict[str, float | None]
    regime: int | None = None
    settings: dict[str, float] | None = None
    known: bool = True  # False only for an auto-registered (unknown) machine


@dataclass(frozen=True, slots=True)
class Event:
    site: str
    machine: str
    ts: datetime
    seq: int
    event: str
    mode: str | None = None
    kind: str | None = None
    duration_s: float | None = None
    state: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    known: bool = True


Message = Telemetry | Event


def topic_for(site: str, machine: str, kind: str, root: str = TOPIC_ROOT) -> str:
    """The topic a machine's telemetry (``kind='telemetry'``) or events (``'event'``) go to."""
    return f"{root}/{site}/{machine}/{kind}"


def format_ts(ts: datetime) -> str:
    """RFC 3339 UTC with millisecond precision and a ``Z`` suffix."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def encode(msg: Message) -> bytes:
    """The wire form of a message (compact JSON, keys in a fixed order: byte-identical per input)."""
    body: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "machine": msg.machine,
        "ts": format_ts(msg.ts),
        "seq": msg.seq,
    }
    if isinstance(msg, Telemetry):
        body["values"] = msg.values
        if msg.regime is not None:
            body["regime"] = msg.regime
        if msg.settings is not None:
            body["settings"] = msg.settings
    else:
        body["event"] = msg.event
        for key in ("mode", "kind", "duration_s", "state"):
            if getattr(msg, key) is not None:
                body[key] = getattr(msg, key)
        if msg.detail:
            body["detail"] = msg.detail
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def _reject(reason: Reason, detail: str) -> ContractError:
    return ContractError(reason.value, detail)


def _no_constants(name: str) -> Any:
    raise _reject(Reason.NON_FINITE, f"{name} is not a finite number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _reject(Reason.SCHEMA, "duplicate key in object")
    return out


def parse_topic(topic: str, root: str = TOPIC_ROOT) -> tuple[str, str, str]:
    """(site, machine, kind) of a contract topic, else ContractError(bad_topic)."""
    prefix = root + "/"
    parts = topic[len(prefix) :].split("/") if topic.startswith(prefix) else []
    if len(parts) != 3 or parts[2] not in ("telemetry", "event") or not all(parts[:2]):
        raise _reject(
            Reason.BAD_TOPIC,
            f"topic {topic[:200]!r} is not {root}/<site>/<machine>/<telemetry|event>",
        )
    return parts[0], parts[1], parts[2]


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _finite(name: str, v: Any) -> float:
    if not _is_number(v):
        raise _reject(Reason.WRONG_TYPE, f"{name} must be a number, got {type(v).__name__}")
    f = float(v) if not isinstance(v, int) or abs(v) < 2**1023 else math.inf
    if not math.isfinite(f):
        raise _reject(Reason.NON_FINITE, f"{name} is not a finite number")
    return f


def _text(body: Mapping[str, Any], key: str, *, required: bool) -> str | None:
    v = body.get(key)
    if v is None:
        if required:
            raise _reject(Reason.SCHEMA, f"missing field {key!r}")
        return None
    if not isinstance(v, str):
        raise _reject(Reason.WRONG_TYPE, f"{key} must be a string")
    if not v or len(v) > _NAME_MAX:
        raise _reject(Reason.SCHEMA, f"{key} must be 1..{_NAME_MAX} characters")
    return v


def parse_ts(raw: str, now: datetime, limits: Limits) -> datetime:
    """The UTC instant of an RFC 3339 string inside [limits.min_ts, now + max_future_s].

    Raises ContractError: ``schema`` when not RFC 3339, ``out_of_range_timestamp`` outside the
    window (including instants no datetime can hold, such as year 1 at +14:00).
    """
    if len(raw) > 40 or not _RFC3339.match(raw):
        raise _reject(Reason.SCHEMA, f"ts {raw[:64]!r} is not an RFC 3339 date-time")
    try:
        local = datetime.fromisoformat(raw.upper() if not raw.isupper() else raw)
    except ValueError:  # e.g. February 30th or a leap second
        raise _reject(Reason.SCHEMA, f"ts {raw!r} is not a valid date-time") from None
    offset = local.utcoffset() or timedelta(0)
    try:
        ts = (local.replace(tzinfo=None) - offset).replace(tzinfo=UTC)
    except OverflowError:
        ts = None
    if ts is None or ts < limits.min_ts or (ts - now).total_seconds() > limits.max_future_s:
        raise _reject(
            Reason.OUT_OF_RANGE_TIMESTAMP,
            f"ts {raw} is outside [{format_ts(limits.min_ts)}, now + {limits.max_future_s:g}s]",
        )
    return ts


def _timestamp(body: Mapping[str, Any], now: datetime, limits: Limits) -> datetime:
    raw = body.get("ts")
    if raw is None:
        raise _reject(Reason.SCHEMA, "missing field 'ts'")
    if not isinstance(raw, str):
        raise _reject(Reason.WRONG_TYPE, "ts must be an RFC 3339 string")
    return parse_ts(raw, now, limits)


def decode_json(payload: bytes) -> Any:
    """The JSON value of a UTF-8 payload (no byte-order mark, no UTF-16/32), else ContractError."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _reject(Reason.NOT_JSON, f"payload is not UTF-8: {exc}"[:200]) from None
    if text.startswith("\ufeff"):
        raise _reject(Reason.NOT_JSON, "payload starts with a byte-order mark; send plain UTF-8")
    try:
        return json.loads(text, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)
    except ContractError:
        raise
    except (ValueError, RecursionError) as exc:
        raise _reject(Reason.NOT_JSON, str(exc)[:200]) from None


def _seq(body: Mapping[str, Any]) -> int:
    v = body.get("seq")
    if v is None:
        raise _reject(Reason.SCHEMA, "missing field 'seq'")
    if not isinstance(v, int) or isinstance(v, bool):
        raise _reject(Reason.WRONG_TYPE, "seq must be an integer")
    if not 0 <= v <= MAX_SEQ:
        raise _reject(Reason.SCHEMA, "seq must be between 0 and 2^63-1")
    return v


def _values(raw: Any, spec: MachineSpec | None) -> dict[str, float | None]:
    if not isinstance(raw, dict):
        raise _reject(Reason.WRONG_TYPE, "values must be an object of sensor -> number")
    if not raw:
        raise _reject(Reason.SCHEMA, "values is empty")
    out: dict[str, float | None] = {}
    for name, v in raw.items():
        bounds = spec.bounds.get(name) if spec is not None else None
        if spec is not None and bounds is None:
            raise _reject(
                Reason.UNKNOWN_SENSOR,
                f"sensor {name[:64]!r} is not declared for {spec.type_id}",
            )
        if v is None:  # a drop-out of a declared sensor is data, not an error
            out[name] = None
            continue
        f = _finite(f"values.{name}", v)
        if bounds is not None and not bounds[0] <= f <= bounds[1]:
            raise _reject(
                Reason.OUT_OF_BOUNDS,
                f"values.{name}={f:g} outside [{bounds[0]:g}, {bounds[1]:g}]",
            )
        out[name] = f
    return out


def validate(
    topic: str,
    payload: bytes,
    machines: Mapping[str, MachineSpec],
    *,
    now: datetime,
    limits: Limits = Limits(),
    root: str = TOPIC_ROOT,
) -> Message:
    """Parse and check one MQTT message; raise ContractError with a :class:`Reason` code if it is bad."""
    if len(payload) > limits.max_bytes:
        raise _reject(Reason.OVERSIZED, f"{len(payload)} bytes > {limits.max_bytes}")
    site, machine, kind = parse_topic(topic, root)
    body = decode_json(payload)
    if not isinstance(body, dict):
        raise _reject(Reason.SCHEMA, "payload must be a JSON object")
    schema = body.get("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION or isinstance(schema, bool):
        raise _reject(Reason.SCHEMA, f"unsupported schema version {str(schema)[:20]}")
    name = _text(body, "machine", required=True)
    if name != machine:
        raise _reject(
            Reason.TOPIC_MISMATCH, f"payload machine {name!r} does not match topic {machine!r}"
        )
    spec = machines.get(machine)
    if spec is None and not limits.auto_register:
        raise _reject(Reason.UNKNOWN_MACHINE, f"machine {machine[:64]!r} is not registered")
    if spec is not None and spec.site_id != site:
        raise _reject(
            Reason.TOPIC_MISMATCH, f"machine {machine!r} belongs to site {spec.site_id!r}"
        )
    ts = _timestamp(body, now, limits)
    if spec is not None:
        spec = spec.at(ts)  # judged by the registry's version in effect when it was taken
    seq = _seq(body)
    if kind == "telemetry":
        return _telemetry(body, site, machine, ts, seq, spec)
    return _event(body, site, machine, ts, seq, spec)


def _telemetry(
    body: Mapping[str, Any],
    site: str,
    machine: str,
    ts: datetime,
    seq: int,
    spec: MachineSpec | None,
) -> Telemetry:
    if "values" not in body:
        raise _reject(Reason.SCHEMA, "missing field 'values'")
    values = _values(body["values"], spec)
    regime = body.get("regime")
    if regime is not None and (
        not isinstance(regime, int) or isinstance(regime, bool) or not 0 <= regime < 1000
    ):
        raise _reject(Reason.WRONG_TYPE, "regime must be an integer in [0, 1000)")
    settings_raw = body.get("settings")
    settings: dict[str, float] | None = None
    if settings_raw is not None:
        if not isinstance(settings_raw, dict):
            raise _reject(Reason.WRONG_TYPE, "settings must be an object of name -> number")
        settings = {k: _finite(f"settings.{k}", v) for k, v in settings_raw.items()}
    return Telemetry(site, machine, ts, seq, values, regime, settings, known=spec is not None)


def _event(
    body: Mapping[str, Any],
    site: str,
    machine: str,
    ts: datetime,
    seq: int,
    spec: MachineSpec | None,
) -> Event:
    event = _text(body, "event", required=True)
    if event not in EVENT_KINDS:
        raise _reject(Reason.SCHEMA, f"event must be one of {', '.join(EVENT_KINDS)}")
    mode = _text(body, "mode", required=event == "failure")
    kind = _text(body, "kind", required=event == "maintenance")
    state = _text(body, "state", required=event == "state")
    if kind is not None and kind not in MAINTENANCE_KINDS:
        raise _reject(Reason.SCHEMA, f"kind must be one of {', '.join(MAINTENANCE_KINDS)}")
    if state is not None and state not in MACHINE_STATES:
        raise _reject(Reason.SCHEMA, f"state must be one of {', '.join(MACHINE_STATES)}")
    if mode is not None and spec is not None and mode not in spec.failure_modes:
        raise _reject(
            Reason.UNKNOWN_FAILURE_MODE,
            f"failure mode {mode[:64]!r} is not declared for {spec.type_id}",
        )
    duration: float | None = None
    if body.get("duration_s") is not None:
        duration = _finite("duration_s", body["duration_s"])
        if duration < 0:
            raise _reject(Reason.OUT_OF_BOUNDS, "duration_s must be >= 0")
    detail = body.get("detail", {})
    if not isinstance(detail, dict):
        raise _reject(Reason.WRONG_TYPE, "detail must be an object")
    return Event(
        site, machine, ts, seq, event, mode, kind, duration, state, detail, known=spec is not None
    )


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of both payloads, exported by `forewarn contract schema`."""
    common = {
        "schema": {"const": SCHEMA_VERSION},
        "machine": {"type": "string", "minLength": 1, "maxLength": _NAME_MAX},
        "ts": {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 event time, from 2000-01-01 to a few minutes ahead",
        },
        "seq": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_SEQ,
            "description": "per-machine, increasing; (machine, seq) identifies a reading",
        },
    }
    telemetry = {
        "type": "object",
        "required": ["machine", "ts", "seq", "values"],
        "properties": {
            **common,
            "values": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"type": ["number", "null"]},
                "description": "sensor -> value in the unit the asset registry declares; null = drop-out",
            },
            "regime": {"type": "integer", "minimum": 0, "maximum": 999},
            "settings": {"type": "object", "additionalProperties": {"type": "number"}},
        },
    }
    event = {
        "type": "object",
        "required": ["machine", "ts", "seq", "event"],
        "properties": {
            **common,
            "event": {"enum": list(EVENT_KINDS)},
            "mode": {"type": "string", "description": "failure mode, required for failures"},
            "kind": {"enum": list(MAINTENANCE_KINDS), "description": "required for maintenance"},
            "duration_s": {"type": "number", "minimum": 0},
            "state": {"enum": list(MACHINE_STATES), "description": "required for state events"},
            "detail": {"type": "object"},
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Forewarn MQTT message contract v1",
        "description": "Topics forewarn/v1/{site}/{machine}/telemetry and forewarn/v1/{site}/{machine}/event",
        "$defs": {"telemetry": telemetry, "event": event},
        "oneOf": [{"$ref": "#/$defs/telemetry"}, {"$ref": "#/$defs/event"}],
    }

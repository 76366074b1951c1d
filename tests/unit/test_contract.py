"""The message contract: every reason code, round-trips, and property tests that it never crashes."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forewarn.contract import (
    Event,
    Limits,
    Reason,
    Telemetry,
    encode,
    json_schema,
    parse_topic,
    topic_for,
    validate,
)
from forewarn.errors import ContractError
from tests.factories import make_event, make_registry, make_telemetry

SPECS = make_registry().specs()
NOW = datetime(2026, 1, 2, tzinfo=UTC)
TOPIC = topic_for("s1", "s1-pump-000", "telemetry")
EVENT_TOPIC = topic_for("s1", "s1-pump-000", "event")
GOOD = {
    "schema": 1,
    "machine": "s1-pump-000",
    "ts": "2026-01-01T00:00:01.000Z",
    "seq": 1,
    "values": {"vibration_rms": 2.0, "bearing_temp": 45.0},
}


def reason_of(topic: str, payload: bytes, limits: Limits = Limits()) -> str:
    with pytest.raises(ContractError) as info:
        validate(topic, payload, SPECS, now=NOW, limits=limits)
    return info.value.reason


def body(**changes: object) -> bytes:
    d = dict(GOOD)
    for k, v in changes.items():
        if v is ...:
            d.pop(k)
        else:
            d[k] = v
    return json.dumps(d).encode()


def test_valid_telemetry_and_event_round_trip() -> None:
    t = make_telemetry()
    assert validate(TOPIC, encode(t), SPECS, now=NOW) == t
    e = make_event(event="maintenance", mode=None, kind="preventive", duration_s=7200.0)
    assert validate(EVENT_TOPIC, encode(e), SPECS, now=NOW) == e
    assert encode(t) == encode(t)  # byte-identical


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (TOPIC, b"{not json", Reason.NOT_JSON),
        (TOPIC, b"\xff\xfe\x00", Reason.NOT_JSON),
        (TOPIC, b"[1, 2]", Reason.SCHEMA),
        (TOPIC, body(values=...), Reason.SCHEMA),
        (TOPIC, body(seq=...), Reason.SCHEMA),
        (TOPIC, body(schema=2), Reason.SCHEMA),
        (TOPIC, body(ts="yesterday"), Reason.SCHEMA),
        (TOPIC, body(ts="2026-01-01T00:00:00"), Reason.SCHEMA),
        (
            TOPIC,
            b'{"machine":"s1-pump-000","machine":"x","ts":"2026-01-01T00:00:00Z","seq":1,"values":{"flow":1}}',
            Reason.SCHEMA,
        ),
        (TOPIC, body(seq="7"), Reason.WRONG_TYPE),
        (TOPIC, body(seq=True), Reason.WRONG_TYPE),
        (TOPIC, body(values={"flow": "fast"}), Reason.WRONG_TYPE),
        (TOPIC, body(values=[1, 2]), Reason.WRONG_TYPE),
        (
            TOPIC,
            b'{"machine":"s1-pump-000","ts":"2026-01-01T00:00:00Z","seq":1,"values":{"flow":NaN}}',
            Reason.NON_FINITE,
        ),
        (
            TOPIC,
            b'{"machine":"s1-pump-000","ts":"2026-01-01T00:00:00Z","seq":1,"values":{"flow":-Infinity}}',
            Reason.NON_FINITE,
        ),
        (
            TOPIC,
            b'{"machine":"s1-pump-000","ts":"2026-01-01T00:00:00Z","seq":1,"values":{"flow":1e400}}',
            Reason.NON_FINITE,
        ),
        (TOPIC, body(values={"bearing_temp": 900.0}), Reason.OUT_OF_BOUNDS),
        (TOPIC, body(values={"altitude": 1.0}), Reason.UNKNOWN_SENSOR),
        (TOPIC, body(ts="2026-01-03T00:00:00Z"), Reason.OUT_OF_RANGE_TIMESTAMP),
        # the poison timestamps of issue 18: no datetime can hold them in UTC
        (TOPIC, body(ts="0001-01-01T00:00:00+14:00"), Reason.OUT_OF_RANGE_TIMESTAMP),
        (TOPIC, body(ts="9999-12-31T23:59:59-14:00"), Reason.OUT_OF_RANGE_TIMESTAMP),
        (TOPIC, body(ts="0001-01-01T00:00:00Z"), Reason.OUT_OF_RANGE_TIMESTAMP),
        (TOPIC, body(ts="1999-12-31T23:59:59Z"), Reason.OUT_OF_RANGE_TIMESTAMP),
        # strict RFC 3339: what datetime.fromisoformat alone would accept
        (TOPIC, body(ts="20260101T000000Z"), Reason.SCHEMA),
        (TOPIC, body(ts="2026-01-01 00:00:00Z"), Reason.SCHEMA),
        (TOPIC, body(ts="2026-01-01T00:00Z"), Reason.SCHEMA),
        (TOPIC, body(ts="2026-01-01T00:00:00+0100"), Reason.SCHEMA),
        (TOPIC, body(ts="2026-W01-1T00:00:00Z"), Reason.SCHEMA),
        (TOPIC, body(ts="2026-02-30T00:00:00Z"), Reason.SCHEMA),
        (TOPIC, body(ts="2026-01-01T00:00:00+24:00"), Reason.SCHEMA),
        # UTF-8 JSON only
        (TOPIC, b"\xef\xbb\xbf" + body(), Reason.NOT_JSON),
        (TOPIC, body().decode().encode("utf-16"), Reason.NOT_JSON),
        (TOPIC, body().decode().encode("utf-16-le"), Reason.NOT_JSON),
        (TOPIC, body().decode().encode("utf-32"), Reason.NOT_JSON),
        # an undeclared sensor is refused even when its value is null
        (TOPIC, body(values={"altitude": None}), Reason.UNKNOWN_SENSOR),
        (
            EVENT_TOPIC,
            body(values=..., event="failure", mode="gremlins"),
            Reason.UNKNOWN_FAILURE_MODE,
        ),
        (topic_for("s1", "ghost", "telemetry"), body(machine="ghost"), Reason.UNKNOWN_MACHINE),
        (TOPIC, body(machine="s1-pump-001"), Reason.TOPIC_MISMATCH),
        (topic_for("s2", "s1-pump-000", "telemetry"), body(), Reason.TOPIC_MISMATCH),
        ("forewarn/v1/s1/s1-pump-000/status", body(), Reason.BAD_TOPIC),
        ("other/s1/s1-pump-000/telemetry", body(), Reason.BAD_TOPIC),
        (TOPIC, b"{" + b" " * 70_000 + b"}", Reason.OVERSIZED),
        (TOPIC, b"[" * 50_000 + b"]" * 50_000, Reason.OVERSIZED),
        (EVENT_TOPIC, body(values=..., event="explosion"), Reason.SCHEMA),
        (EVENT_TOPIC, body(values=..., event="failure"), Reason.SCHEMA),
        (EVENT_TOPIC, body(values=..., event="maintenance", kind="repaint"), Reason.SCHEMA),
        (
            EVENT_TOPIC,
            body(values=..., event="maintenance", kind="repair", duration_s=-1),
            Reason.OUT_OF_BOUNDS,
        ),
    ],
)
def test_each_reason(topic: str, payload: bytes, reason: Reason) -> None:
    assert reason_of(topic, payload) == reason.value


def test_deep_nesting_within_size_limit_is_not_json() -> None:
    deep = b'{"machine":"s1-pump-000","values":' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    assert reason_of(TOPIC, deep, Limits(max_bytes=100_000)) in (Reason.NOT_JSON, Reason.WRONG_TYPE)


def test_unknown_machine_accepted_when_auto_registering() -> None:
    msg = validate(
        topic_for("s9", "ghost", "telemetry"),
        body(machine="ghost"),
        SPECS,
        now=NOW,
        limits=Limits(auto_register=True),
    )
    assert isinstance(msg, Telemetry) and not msg.known and msg.site == "s9"


def test_dropout_is_null_not_error() -> None:
    msg = validate(TOPIC, body(values={"flow": None, "pressure": 5.0}), SPECS, now=NOW)
    assert isinstance(msg, Telemetry) and msg.values == {"flow": None, "pressure": 5.0}


def test_parse_topic() -> None:
    assert parse_topic("forewarn/v1/a/b/event") == ("a", "b", "event")


def test_json_schema_names_both_payloads() -> None:
    schema = json_schema()
    assert set(schema["$defs"]) == {"telemetry", "event"}
    assert schema["$defs"]["telemetry"]["required"] == ["machine", "ts", "seq", "values"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_contract_errors(payload: bytes) -> None:
    try:
        validate(TOPIC, payload, SPECS, now=NOW)
    except ContractError as exc:
        assert exc.reason in {r.value for r in Reason}


@settings(max_examples=400, deadline=None)
@given(json_values, st.sampled_from([TOPIC, EVENT_TOPIC]))
def test_random_json_only_raises_contract_errors(value: object, topic: str) -> None:
    try:
        payload = json.dumps(value).encode()
    except ValueError:
        return
    try:
        validate(topic, payload, SPECS, now=NOW)
    except ContractError as exc:
        assert exc.reason in {r.value for r in Reason}


@settings(max_examples=300, deadline=None)
@given(
    json_values.filter(lambda v: isinstance(v, dict)),
    st.sampled_from(["machine", "ts", "seq", "values", "regime", "settings", "schema"]),
)
def test_mutated_fields_never_crash(value: object, key: str) -> None:
    d = dict(GOOD)
    d[key] = value
    with contextlib.suppress(ContractError):
        validate(TOPIC, json.dumps(d).encode(), SPECS, now=NOW)


sensor_values = st.fixed_dictionaries(
    {},
    optional={
        "vibration_rms": st.floats(0, 50) | st.none(),
        "bearing_temp": st.floats(-20, 150),
        "flow": st.floats(0, 500),
        "pressure": st.floats(0, 40),
    },
).filter(bool)


@settings(max_examples=300, deadline=None)
@given(
    seq=st.integers(0, 2**63 - 1),
    offset_ms=st.integers(-(10**11), 10**5),
    values=sensor_values,
    regime=st.none() | st.integers(0, 999),
)
def test_valid_telemetry_round_trips(
    seq: int, offset_ms: int, values: dict, regime: int | None
) -> None:
    t = Telemetry("s1", "s1-pump-000", NOW + timedelta(milliseconds=offset_ms), seq, values, regime)
    assert validate(TOPIC, encode(t), SPECS, now=NOW) == t


@settings(max_examples=200, deadline=None)
@given(
    seq=st.integers(0, 10**9),
    kind=st.sampled_from(["failure", "maintenance", "state"]),
    mode=st.sampled_from(["bearing", "random"]),  # the pump type's declared modes
    duration=st.floats(0, 1e6),
)
def test_valid_events_round_trip(seq: int, kind: str, mode: str, duration: float) -> None:
    fields: dict = {
        "failure": {"mode": mode},
        "maintenance": {"kind": "repair", "duration_s": duration},
        "state": {"state": "down"},
    }[kind]
    e = Event("s1", "s1-pump-000", NOW, seq, kind, **fields)
    assert validate(EVENT_TOPIC, encode(e), SPECS, now=NOW) == e

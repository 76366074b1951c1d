"""The ingest fast path accepts only what the contract accepts, and returns the same message."""

from __future__ import annotations

import json
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from forewarn.contract import Limits, encode, validate
from forewarn.errors import ContractError
from ingest.fastpath import fast_telemetry
from tests.factories import T0, make_registry, make_telemetry

SPECS = make_registry(machines=2).specs()
NOW = T0 + timedelta(days=1)
ROOT = "forewarn/v1"
TOPIC = f"{ROOT}/s1/s1-pump-000/telemetry"
BASE = json.loads(encode(make_telemetry("s1-pump-000", 5, regime=3)))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
)
json_values = st.recursive(
    scalars, lambda inner: st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6
)
keys = st.sampled_from(
    ["schema", "machine", "ts", "seq", "values", "regime", "settings", "x", "vibration_rms", "flow"]
)


def _check(topic: str, payload: bytes, limits: Limits = Limits()) -> None:
    fast = fast_telemetry(topic, payload, SPECS, now=NOW, limits=limits, root=ROOT)
    try:
        slow = validate(topic, payload, SPECS, now=NOW, limits=limits, root=ROOT)
    except ContractError:
        assert fast is None, "fast path accepted what the contract rejects"
        return
    if fast is not None:
        assert fast == slow


def test_a_plain_message_takes_the_fast_path_with_the_same_result() -> None:
    payload = encode(make_telemetry("s1-pump-000", 5, regime=3))
    fast = fast_telemetry(TOPIC, payload, SPECS, now=NOW, limits=Limits(), root=ROOT)
    assert fast is not None
    assert fast == validate(TOPIC, payload, SPECS, now=NOW, root=ROOT)


@settings(max_examples=200, deadline=None)
@given(key=keys, value=json_values, drop=st.booleans())
def test_mutated_top_level_fields_agree_with_the_contract(
    key: str, value: object, drop: bool
) -> None:
    body = dict(BASE)
    if drop:
        body.pop(key, None)
    else:
        body[key] = value
    _check(TOPIC, json.dumps(body).encode())


@settings(max_examples=200, deadline=None)
@given(key=keys, value=json_values)
def test_mutated_sensor_values_agree_with_the_contract(key: str, value: object) -> None:
    body = dict(BASE)
    body["values"] = dict(BASE["values"]) | {key: value}
    _check(TOPIC, json.dumps(body).encode())


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=300), cut=st.integers(0, 400))
def test_arbitrary_bytes_and_truncations_agree_with_the_contract(data: bytes, cut: int) -> None:
    payload = encode(make_telemetry("s1-pump-000", 5))
    _check(TOPIC, data)
    _check(TOPIC, payload[:cut] + data[:3])


def test_duplicate_keys_never_take_the_fast_path() -> None:
    payload = encode(make_telemetry("s1-pump-000", 5))
    dup_top = payload.replace(b'"seq":5', b'"seq":4,"seq":5')
    dup_values = payload.replace(b'"flow":120.0', b'"flow":1.0,"flow":120.0')
    spaced = payload.replace(b'"seq":5', b'"seq" :4,"seq":5')
    for p in (dup_top, dup_values, spaced):
        assert fast_telemetry(TOPIC, p, SPECS, now=NOW, limits=Limits(), root=ROOT) is None
        _check(TOPIC, p)


def test_other_topics_sizes_and_future_timestamps_fall_back() -> None:
    payload = encode(make_telemetry("s1-pump-000", 5))
    for topic in (f"{ROOT}/s1/s1-pump-001/telemetry", f"{ROOT}/s2/s1-pump-000/telemetry",
                  f"{ROOT}//s1-pump-000/telemetry", f"x/{TOPIC}", f"{ROOT}/s1/s1-pump-000/event"):  # fmt: skip
        _check(topic, payload)
        assert fast_telemetry(topic, payload, SPECS, now=NOW, limits=Limits(), root=ROOT) is None
    _check(TOPIC, payload, Limits(max_bytes=50))
    future = encode(make_telemetry("s1-pump-000", 5, ts=NOW + timedelta(hours=1)))
    _check(TOPIC, future)


def test_the_validation_benchmark_times_the_fast_path_on_messages_it_takes() -> None:
    """`forewarn bench validate` (the README's case for keeping the fast path) measures real work."""
    from tools.bench.validate import run_validate_bench

    result = run_validate_bench(1000, rounds=1)
    assert result["same_messages"] is True
    assert result["fastpath_taken"] == 1000

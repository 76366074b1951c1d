"""The whole validation function of ingest (``Pipeline.classify``: fast path, contract, and the
catch-all) over arbitrary bytes, JSON and topics: every input is either accepted for storage or
dead-lettered with a known reason code — never ``internal`` (a validation bug), never an exception.
"""

from __future__ import annotations

import json
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forewarn.contract import Event, Limits, Reason, Telemetry, encode, topic_for, validate
from ingest.pipeline import DEAD, EVENT, TELEMETRY, Pipeline
from tests.factories import T0, make_event, make_registry, make_telemetry

ROOT = "forewarn/v1"
SPECS = make_registry(machines=2).specs()
NOW = T0 + timedelta(days=1)
LIMITS = Limits(max_bytes=4096)
KNOWN = {r.value for r in Reason} - {Reason.INTERNAL.value}
PIPELINE = Pipeline(
    lambda: None,  # type: ignore[arg-type,return-value]  # the writer never starts here
    lambda pairs: None,
    specs=SPECS,
    limits=LIMITS,
    root=ROOT,
    batch_size=10,
    flush_interval_s=1.0,
    queue_max=10,
    now=lambda: NOW,
)
GOOD_T = json.loads(encode(make_telemetry("s1-pump-000", 5, regime=2)))
GOOD_E = json.loads(encode(make_event("s1-pump-001", 6)))

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00",
            "1999-12-31T23:59:59Z",
            "s1-pump-000",
            "bearing",
            "failure",
            "vibration_rms",
            "flow",
        ]
    ),  # fmt: skip
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
topics = st.one_of(
    st.sampled_from(
        [
            topic_for("s1", "s1-pump-000", "telemetry", ROOT),
            topic_for("s1", "s1-pump-001", "event", ROOT),
            topic_for("s1", "ghost", "telemetry", ROOT),
            topic_for("s2", "s1-pump-000", "telemetry", ROOT),
            f"{ROOT}/s1/s1-pump-000/status",
            f"{ROOT}//s1-pump-000/telemetry",
            "",
        ]
    ),
    st.text(max_size=60),
)


def _mutated(base: dict, key: str, value: object, drop: bool) -> dict:
    out = dict(base)
    if drop:
        out.pop(key, None)
    else:
        out[key] = value
    return out


def _encodings(value: object) -> st.SearchStrategy[bytes]:
    text = json.dumps(value)  # allow_nan: NaN / Infinity literals come out as JSON cannot carry
    return st.sampled_from(
        [
            text.encode(),
            b"\xef\xbb\xbf" + text.encode(),
            text.encode("utf-16"),
            text.encode("utf-32"),
        ]
    )


payloads = st.one_of(
    st.binary(max_size=200),
    json_values.flatmap(_encodings),
    st.builds(
        _mutated,
        st.sampled_from([GOOD_T, GOOD_E]),
        st.sampled_from(
            [
                "schema",
                "machine",
                "ts",
                "seq",
                "values",
                "regime",
                "settings",
                "event",
                "mode",
                "kind",
                "duration_s",
                "state",
                "detail",
                "x",
            ]
        ),  # fmt: skip
        json_values,
        st.booleans(),
    ).flatmap(_encodings),
)


def _check(topic: str, payload: bytes) -> None:
    kind, obj, *_ = PIPELINE.classify(topic, payload, 1, 1)
    if kind == DEAD:
        reason, detail = obj  # type: ignore[misc]
        assert reason in KNOWN, (reason, detail)
        assert detail
        return
    assert kind in (TELEMETRY, EVENT)
    assert isinstance(obj, Telemetry | Event)
    assert obj.machine in SPECS and LIMITS.min_ts <= obj.ts <= NOW + timedelta(minutes=5)
    # what is stored is exactly what the contract accepts from its own wire form
    again = validate(topic_for(obj.site, obj.machine, "telemetry" if kind == TELEMETRY else "event",
                               ROOT), encode(obj), SPECS, now=NOW, limits=LIMITS, root=ROOT)  # fmt: skip
    assert again == obj


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(topic=topics, payload=payloads)
def test_every_input_is_stored_or_dead_lettered_with_a_known_reason(
    topic: str, payload: bytes
) -> None:
    _check(topic, payload)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=payloads)
def test_the_same_on_the_machines_own_topics(payload: bytes) -> None:
    for topic in (topic_for("s1", "s1-pump-000", "telemetry", ROOT),
                  topic_for("s1", "s1-pump-001", "event", ROOT)):  # fmt: skip
        _check(topic, payload)


def test_the_good_messages_are_accepted() -> None:
    """The property is not vacuous: the two base messages are stored as they are."""
    assert PIPELINE.classify(topic_for("s1", "s1-pump-000", "telemetry", ROOT),
                             json.dumps(GOOD_T).encode(), 1, 1)[0] == TELEMETRY  # fmt: skip
    assert PIPELINE.classify(topic_for("s1", "s1-pump-001", "event", ROOT),
                             json.dumps(GOOD_E).encode(), 1, 1)[0] == EVENT  # fmt: skip

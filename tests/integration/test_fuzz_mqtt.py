"""Payload fuzzing through the real broker: every message is stored or dead-lettered with a reason
code, and the ingest worker never crashes.

Hypothesis draws batches of hostile MQTT payloads (random bytes, deep and huge JSON, huge and tiny
numbers, odd unicode, wrong types, duplicate keys, NaN/Infinity literals, future or junk
timestamps, mismatched topics) and publishes them at QoS 1 to a running worker on the machine's
Mosquitto under a private topic root. Example counts are bounded so the suite stays fast.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forewarn.contract import Reason, format_ts
from tests.integration.ingest_support import (
    SITE,
    Publisher,
    running,
    seed,
    wait_until,
    worker_settings,
)

pytestmark = pytest.mark.timeout(300)

EXAMPLES = 60  # batches; each holds up to BATCH_MAX messages
BATCH_MAX = 12
MACHINES = [f"{SITE}-pump-{i:03d}" for i in range(3)]
SENSORS = ["vibration_rms", "bearing_temp", "flow", "pressure"]
REASONS = {r.value for r in Reason} | {"db_rejected"}

segment = st.text(st.sampled_from("abcxyz019-_"), min_size=1, max_size=12)
odd_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40
)  # combining marks, RTL, emoji, NUL, control characters
numbers = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([5e-324, -5e-324, 1e308, -1e308, 0.0, -0.0, 2**63, 2**64 + 1, 10**400]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, odd_text)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def timestamps(draw: st.DrawFn) -> Any:
    now = datetime.now(UTC)
    return draw(
        st.one_of(
            st.integers(-3600 * 24 * 365 * 30, 3600).map(
                lambda s: format_ts(now + timedelta(seconds=s))
            ),
            st.integers(600, 10**6).map(lambda s: format_ts(now + timedelta(seconds=s))),  # future
            st.sampled_from(["", "yesterday", "2026-13-45T99:99:99Z", "2026-01-01T00:00:00"]),
            json_values,
        )
    )


@st.composite
def structured(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid telemetry or event message with zero to two hostile mutations."""
    machine = draw(st.sampled_from(MACHINES))
    site, topic_machine = SITE, machine
    kind = draw(st.sampled_from(["telemetry", "telemetry", "event"]))
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "machine": machine,
        "ts": format_ts(now - timedelta(seconds=draw(st.integers(0, 3600 * 24 * 365)))),
        "seq": draw(st.integers(0, 2**63 - 1)),
    }
    if kind == "telemetry":
        body["values"] = draw(
            st.dictionaries(
                st.sampled_from(SENSORS),
                st.one_of(st.none(), st.floats(0, 20), st.integers(0, 20)),
                min_size=1,
            )
        )
    else:
        body.update(draw(st.sampled_from([
            {"event": "failure", "mode": "bearing"},
            {"event": "maintenance", "kind": "repair", "duration_s": 3600},
            {"event": "state", "state": "running"},
        ])))  # fmt: skip
    mutations = draw(st.lists(st.integers(0, 9), max_size=2))
    for m in mutations:
        if m == 0:
            body[draw(st.sampled_from(sorted(body)))] = draw(json_values)  # wrong type
        elif m == 1 and kind == "telemetry":
            body["values"] = draw(st.dictionaries(odd_text | st.sampled_from(SENSORS),
                                                  json_values | numbers, max_size=5))  # fmt: skip
        elif m == 2:
            body["ts"] = draw(timestamps())
        elif m == 3:
            del body[draw(st.sampled_from(sorted(body)))]
        elif m == 4:
            topic_machine = draw(st.sampled_from(["ghost-machine", *MACHINES]))
        elif m == 5:
            site = "other-site"
        elif m == 6:
            body[draw(odd_text)] = draw(json_values)  # an unknown extra field
        elif m == 7:
            body["seq"] = draw(numbers)
    text = json.dumps(body, ensure_ascii=draw(st.booleans()))
    if 8 in mutations and len(body) > 1:  # a duplicate key
        text = text[:-1] + f', "seq": {draw(st.integers(0, 100))}}}'
    if 9 in mutations:  # bare constants JSON parsers accept and the contract refuses
        text = text.replace(": 0.0", ": NaN", 1).replace(": 1", ": Infinity", 1)
    return f"{site}/{topic_machine}/{kind}", text.encode("utf-8", "surrogatepass")


raw_payloads = st.one_of(
    st.binary(max_size=2000),
    st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),  # deep nesting
    st.integers(1, 3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.integers(70_000, 120_000).map(lambda n: b'{"pad":"' + b"x" * n + b'"}'),  # oversized
    json_values.map(lambda v: json.dumps(v).encode()),
    odd_text.map(lambda s: s.encode("utf-8", "surrogatepass")),
)


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, bytes]:
    if draw(st.booleans()):
        return draw(structured())
    sub = f"{draw(st.sampled_from([SITE, 'x']))}/{draw(st.sampled_from([*MACHINES, 'y']))}"
    return f"{sub}/{draw(st.sampled_from(['telemetry', 'event']))}", draw(raw_payloads)


def test_fuzzed_payloads_are_stored_or_dead_lettered_and_ingest_survives(
    db_url: str, mqtt_url: str, topic_root: str, caplog: pytest.LogCaptureFixture
) -> None:
    seed(db_url, machines=len(MACHINES))
    pub = Publisher(mqtt_url)
    sent: list[tuple[str, bytes]] = []
    caplog.set_level(logging.WARNING, logger="ingest")
    with running(worker_settings(topic_root), db_url, mqtt_url) as worker:

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(st.lists(messages(), min_size=1, max_size=BATCH_MAX))
        def publish_batch(batch: list[tuple[str, bytes]]) -> None:
            full = [(f"{topic_root}/{t}", p) for t, p in batch]
            pub.publish(full)
            sent.extend(full)
            wait_until(lambda: worker.messages >= len(sent), 30, "the batch committed")

        publish_batch()
        assert worker.result is None  # still running: nothing crashed it
    pub.close()
    assert worker.messages == len(sent)

    with psycopg.connect(db_url) as conn:
        # a dead letter keeps an excerpt of a large payload: match the whole one by its sha256
        dead = conn.execute("select topic, sha256, reason from dead_letters").fetchall()
        rows = conn.execute(
            "select machine_id, seq from readings union all select machine_id, seq from machine_events"
        ).fetchall()
    assert {reason for *_, reason in dead} <= REASONS
    dead_msgs = {(t, digest) for t, digest, _ in dead}
    stored = {(m, int(s)) for m, s in rows}
    for topic, payload in sent:
        if (topic, hashlib.sha256(payload).hexdigest()) in dead_msgs:
            continue
        body = json.loads(payload)  # not dead-lettered: it must have been a valid message
        assert (body["machine"], body["seq"]) in stored, (topic, payload[:200])
    crashes = [
        r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("ingest")
    ]
    assert not crashes, crashes[0].getMessage()
    reasons = sorted({reason for *_, reason in dead})
    logging.getLogger(__name__).info(
        "fuzz: %d messages, %d dead letters (%s), %d stored",
        len(sent),
        len(dead),
        reasons,
        len(stored),
    )

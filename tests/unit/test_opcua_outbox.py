"""The connector's outbox and node map: bounded oldest-first drop, sequence numbers across restarts,
clear errors for a bad map."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.mapping import browse_path, is_node_id, load_map
from forewarn.errors import ConfigError
from forewarn.storage.outbox import Outbox, Reading

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _reading(i: int, machine: str = "m1") -> Reading:
    return Reading("s1", machine, T0 + timedelta(seconds=i), {"temp": float(i)})


def test_full_outbox_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", max_messages=3, root="forewarn/v1")
    assert box.add([_reading(i) for i in range(5)]) == 2
    assert box.add([_reading(5)]) == 1
    kept = [json.loads(p)["values"]["temp"] for _, _, p in box.peek(10)]
    assert kept == [3.0, 4.0, 5.0] and len(box) == 3 and box.dropped == 3


def test_sequence_numbers_continue_after_a_restart_and_only_acked_messages_leave(
    tmp_path: Path,
) -> None:
    path = tmp_path / "o.sqlite3"
    box = Outbox(path, max_messages=100, root="forewarn/v1")
    box.add([_reading(0), _reading(1), _reading(0, "m2")])
    first = [(t, json.loads(p)) for _, t, p in box.peek(10)]
    assert first[0][0] == "forewarn/v1/s1/m1/telemetry"
    m1 = [b["seq"] for t, b in first if b["machine"] == "m1"]
    assert m1[1] == m1[0] + 1
    box.remove([i for i, _, _ in box.peek(2)])  # the broker acknowledged the first two
    box.close()
    box = Outbox(path, max_messages=100, root="forewarn/v1")  # a restarted connector
    assert [json.loads(p)["machine"] for _, _, p in box.peek(10)] == ["m2"]
    box.add([_reading(2)])
    assert json.loads(box.peek(10)[-1][2])["seq"] == m1[1] + 1
    assert box.last_seen()[("m1", "temp")] == int((T0 + timedelta(seconds=2)).timestamp() * 1000)


def test_node_references_and_map_errors_name_the_field(tmp_path: Path) -> None:
    assert is_node_id("ns=2;s=Pump0.Flow") and not is_node_id("0:Objects/2:Pump0")
    assert browse_path("/0:Objects/2:Pump0/2:Flow") == ["0:Objects", "2:Pump0", "2:Flow"]
    good = tmp_path / "good.toml"
    good.write_text('site = "s1"\n[[machines]]\nid = "m1"\nsensors = { flow = "ns=2;i=7" }\n')
    assert load_map(good).nodes() == [("m1", "flow", "ns=2;i=7")]
    bad = tmp_path / "bad.toml"
    bad.write_text('[[machines]]\nid = "m1"\nsensors = { flow = "ns=2;i=7" }\n')
    with pytest.raises(ConfigError, match=r"machines\[0\].site"):
        load_map(bad)
    bad.write_text('site = "s1"\n[[machines]]\nid = "m1"\nsensors = { flow = 7 }\n')
    with pytest.raises(ConfigError, match=r"machines\[0\].sensors.flow"):
        load_map(bad)

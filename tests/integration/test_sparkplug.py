"""Sparkplug B ingest against a real edge node (pysparkplug) publishing through the real Mosquitto.

The edge node runs in its own process and virtual environment (tests/sparkplug_edge/edge_node.py);
each test uses its own group id, so tests sharing the broker never see each other's messages.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import urlopen

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from forewarn.broker import free_port
from forewarn.settings import load_settings
from ingest.sparkplug.codec import REBIRTH
from tests.integration.ingest_support import Publisher, running, seed, wait_until

pytestmark = [pytest.mark.sparkplug, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
EDGE_VENV = ROOT / ".venv" / "sparkplug-edge"
EDGE_SCRIPT = ROOT / "tests" / "sparkplug_edge" / "edge_node.py"
EDGE_REQUIREMENTS = ROOT / "tests" / "sparkplug_edge" / "requirements.txt"
METRICS = ("Sensors/bearing_temp", "Sensors/vibration_rms", "Status/text")


@pytest.fixture(scope="session")
def edge_python() -> Path:
    """The edge node's interpreter; `make install` builds its venv, this builds it if missing."""
    python = EDGE_VENV / "bin" / "python"
    probe = [str(python), "-c", "import pysparkplug"]
    if not python.exists() or subprocess.run(probe, capture_output=True).returncode != 0:
        subprocess.run([sys.executable, "-m", "venv", str(EDGE_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(EDGE_REQUIREMENTS)], check=True
        )
    return python


@dataclass
class EdgeNode:
    proc: subprocess.Popen[str]
    events: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)

    def send(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self.expect("sent")

    def expect(self, event: str, timeout_s: float = 20.0) -> dict[str, Any]:
        """The next event of this kind (others before it are dropped)."""
        while True:
            try:
                got = self.events.get(timeout=timeout_s)
            except queue.Empty:
                raise AssertionError(f"edge node: no {event!r} within {timeout_s}s") from None
            if got.get("event") == event:
                return got
            assert got.get("event") != "error", got


@contextmanager
def edge_node(
    python: Path, mqtt_url: str, group: str, edge: str, devices: list[str]
) -> Iterator[EdgeNode]:
    parts = urlsplit(mqtt_url)
    proc = subprocess.Popen(
        [
            str(python),
            str(EDGE_SCRIPT),
            f"--host={parts.hostname or '127.0.0.1'}",
            f"--port={parts.port or 1883}",
            f"--group={group}",
            f"--edge={edge}",
            f"--devices={','.join(devices)}",
            f"--metrics={','.join(METRICS)}",
            f"--client-id={edge}-{uuid.uuid4().hex[:6]}",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    node = EdgeNode(proc)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            node.events.put(json.loads(line))

    threading.Thread(target=pump, daemon=True).start()
    try:
        yield node
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


class Recorder:
    """Records the raw messages of a topic filter as the broker delivers them."""

    def __init__(self, mqtt_url: str, topic_filter: str) -> None:
        parts = urlsplit(mqtt_url)
        self.messages: list[tuple[str, bytes]] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"rec-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload))
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.on_connect = lambda c, *_a: c.subscribe(topic_filter, qos=1)
        self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, 30)
        self.client.loop_start()
        assert self.subscribed.wait(10), "recorder: no SUBACK"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def q(db_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return list(conn.execute(sql, params))


def readings_of(db_url: str, machine: str) -> list[dict[str, float | None]]:
    return [r[0] for r in q(db_url, "select values from readings where machine_id = %s", machine)]


def test_sparkplug_edge_node_births_data_rebirth_and_death(
    db_url: str, mqtt_url: str, topic_root: str, edge_python: Path
) -> None:
    machines = seed(db_url, machines=2)  # s1-pump-000, s1-pump-001: the edge node's devices
    m0, m1 = machines
    group, edge = f"fwtest-{uuid.uuid4().hex[:8]}", "edge1"
    metrics_port = free_port()
    settings = load_settings(
        mqtt={"topic_root": topic_root, "keepalive_s": 10},
        ingest={"metrics_port": metrics_port, "flush_interval_s": 0.05},
        sparkplug={"groups": [group], "rebirth_interval_s": 0},
    )
    recorder = Recorder(mqtt_url, f"spBv1.0/{group}/#")
    with (
        running(settings, db_url, mqtt_url),
        edge_node(edge_python, mqtt_url, group, edge, machines) as node,
    ):
        node.expect("born")

        # births: the catalogue (names, aliases, types, mapping), a state event, the birth values
        wait_until(
            lambda: len(q(db_url, "select 1 from sparkplug_metrics")) == 2 * len(METRICS) + 1,
            what="birth certificates recorded",
        )
        catalogue = {
            (d, n): (alias, dtype, machine, sensor)
            for d, n, alias, dtype, machine, sensor in q(
                db_url,
                "select device, name, alias, datatype, machine_id, sensor from sparkplug_metrics",
            )
        }
        assert catalogue[(m0, "Sensors/bearing_temp")] == (1, "Double", m0, "bearing_temp")
        assert catalogue[(m1, "Sensors/vibration_rms")][2:] == (m1, "vibration_rms")
        assert catalogue[(m0, "Status/text")][3] is None  # not a sensor of the pump type
        assert catalogue[("", "bdSeq")][2:] == (edge, None)
        wait_until(
            lambda: (
                len(q(db_url, "select 1 from machine_events where detail->>'state' = 'running'"))
                == 2
            ),
            what="running state events from the DBIRTHs",
        )
        assert readings_of(db_url, m0) == [{"bearing_temp": 0.0, "vibration_rms": 0.0}]

        # data: aliases only, decoded and stored under the machines' sensors
        node.send(cmd="data", device=m0, values={"Sensors/bearing_temp": 61.5})
        sent = node.send(
            cmd="data",
            device=m1,
            values={"Sensors/vibration_rms": 3.25, "Sensors/bearing_temp": 40},
        )
        wait_until(lambda: len(readings_of(db_url, m1)) == 2, what="DDATA stored")
        assert {"bearing_temp": 61.5} in readings_of(db_url, m0)
        assert {"vibration_rms": 3.25, "bearing_temp": 40.0} in readings_of(db_url, m1)
        (key,) = q(db_url, "select seq, ts from readings where machine_id = %s and seq %% 256 = %s",
                   m1, sent["seq"])  # fmt: skip
        assert key[0] // 256 == int(key[1].timestamp() * 1000)  # natural key: (ts_ms, seq)

        # a redelivered DDATA is stored once (and, being out of sequence, asks for a rebirth)
        wait_until(lambda: any(t.endswith(f"DDATA/{edge}/{m1}") for t, _ in recorder.messages),
                   what="recorder saw the DDATA")  # fmt: skip
        ddata = next(m for m in recorder.messages if m[0].endswith(f"DDATA/{edge}/{m1}"))
        pub = Publisher(mqtt_url)
        pub.publish([ddata])
        assert REBIRTH in node.expect("ncmd")["metrics"]
        node.expect("reborn")
        # the rebirth's values follow the redelivery in the stream: once they are in, so is it
        wait_until(lambda: len(readings_of(db_url, m1)) == 3, what="the rebirth stored")
        same = "select count(*) from readings where machine_id = %s and ts = %s"
        assert q(db_url, same, m1, key[1]) == [(1,)]

        # a seq gap (a lost message) makes ingest ask for a rebirth; the data after it is kept
        node.send(cmd="gap")
        node.send(cmd="data", device=m0, values={"Sensors/bearing_temp": 77.0})
        assert REBIRTH in node.expect("ncmd")["metrics"]
        node.expect("reborn")
        wait_until(lambda: {"bearing_temp": 77.0} in readings_of(db_url, m0), what="post-gap data")

        # an alias no birth declared: dead-lettered with its reason, and a rebirth asked for
        node.send(cmd="alias", device=m0, alias=999)
        assert REBIRTH in node.expect("ncmd")["metrics"]
        node.expect("reborn")
        # a value outside the sensor's bounds: dead-lettered as the JSON contract would
        node.send(cmd="data", device=m1, values={"Sensors/vibration_rms": 1000.0})
        wait_until(lambda: len(q(db_url, "select 1 from dead_letters")) == 2, what="dead letters")
        dead = dict(q(db_url, "select reason, topic from dead_letters"))
        assert dead == {
            "unknown_alias": f"spBv1.0/{group}/DDATA/{edge}/{m0}",
            "out_of_bounds": f"spBv1.0/{group}/DDATA/{edge}/{m1}",
        }

        with urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        # the redelivery, the gap, the unknown alias
        assert "forewarn_ingest_sparkplug_rebirths_total 3.0" in metrics

        # a device leaves (DDEATH): that machine goes down
        node.send(cmd="deregister", device=m1)
        downs_sql = "select 1 from machine_events where detail->>'state' = 'down'"
        wait_until(lambda: len(q(db_url, downs_sql)) == 1, what="down state event from the DDEATH")

        # the connection drops (kill -9): the broker publishes the NDEATH will, the rest goes down
        os.kill(node.proc.pid, signal.SIGKILL)
        wait_until(lambda: len(q(db_url, downs_sql)) == 2, what="down state event from the NDEATH")
        downs = q(db_url, "select machine_id, detail->>'bdSeq' from machine_events"
                  " where detail->>'state' = 'down' order by machine_id")  # fmt: skip
        assert downs[0][0] == m0 and downs[0][1] is not None  # the will carries its bdSeq
        assert downs[1] == (m1, None)
    recorder.close()
    pub.close()
    # nothing stored twice: every reading key is unique, and every value sent arrived
    keys = q(
        db_url, "select machine_id, seq, count(*) from readings group by 1, 2 having count(*) > 1"
    )
    assert keys == []


def test_sparkplug_auto_register_makes_born_devices_machines(
    db_url: str, mqtt_url: str, topic_root: str, edge_python: Path
) -> None:
    group, edge = f"fwtest-{uuid.uuid4().hex[:8]}", "edge2"
    devices = [f"dev-{uuid.uuid4().hex[:6]}"]
    settings = load_settings(
        mqtt={"topic_root": topic_root, "keepalive_s": 10},
        ingest={"metrics_port": 0, "flush_interval_s": 0.05},
        sparkplug={
            "groups": [group],
            "auto_register": True,
            "machine_id": "{edge}-{device}",
            "host_id": f"forewarn-{group}",
        },
    )
    machine = f"{edge}-{devices[0]}"
    state = Recorder(mqtt_url, f"spBv1.0/STATE/forewarn-{group}")
    with (
        running(settings, db_url, mqtt_url),
        edge_node(edge_python, mqtt_url, group, edge, devices) as node,
    ):
        node.expect("born")
        wait_until(lambda: readings_of(db_url, machine) != [], what="the birth stored")
        ((site, type_id, sensors),) = q(
            db_url,
            "select m.site_id, m.type_id, t.sensors from machines m"
            " join machine_types t on t.id = m.type_id where m.id = %s",
            machine,
        )
        assert (site, type_id) == (group, f"sparkplug:{machine}")
        assert sorted(s["name"] for s in sensors) == ["bearing_temp", "text", "vibration_rms"]
        node.send(cmd="data", device=devices[0], values={"Sensors/bearing_temp": 55.5})
        wait_until(lambda: {"bearing_temp": 55.5} in readings_of(db_url, machine), what="data")
        # the primary host's STATE: online (retained) while ingest runs
        assert json.loads(state.messages[0][1])["online"] is True
    assert q(db_url, "select count(*) from dead_letters") == [(0,)]
    wait_until(lambda: len(state.messages) == 2, what="STATE offline on shutdown")
    online, offline = (json.loads(p) for _, p in state.messages)
    assert offline == {"online": False, "timestamp": online["timestamp"]}
    clear = state.client.publish(f"spBv1.0/STATE/forewarn-{group}", b"", qos=1, retain=True)
    clear.wait_for_publish(10)  # no retained message left on the shared broker
    state.close()

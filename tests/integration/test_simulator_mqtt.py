"""The simulator over the real broker: a published stream arrives; an order triggers maintenance."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from forewarn.broker import find_mosquitto, free_port
from forewarn.factory import load_factory
from simulator.app import simulate, stream_to
from simulator.engine import Plant, encode_stream
from simulator.mqtt import MqttPublisher, command_payload, command_topic

TIMEOUT_S = 20.0
MOSQUITTO = find_mosquitto()


class Subscriber:
    """Collects every message under a topic filter; fails the test if a callback raised."""

    def __init__(self, url: str, topic_filter: str) -> None:
        host, port = url.split("://")[1].split(":")
        self.got: list[tuple[str, bytes]] = []
        self.errors: list[BaseException] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(topic_filter, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p=None: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, int(port))
        self.client.loop_start()
        assert self._subscribed.wait(TIMEOUT_S), "subscription not acknowledged"

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.got.append((msg.topic, bytes(msg.payload)))
        except BaseException as exc:  # surfaced by the test, never swallowed
            self.errors.append(exc)

    def wait_for(self, pred: Any) -> bool:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            if pred(self.got):
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        assert not self.errors


@pytest.mark.parametrize("qos", [0, 1])
def test_published_stream_arrives_at_a_subscriber(mqtt_url: str, topic_root: str, qos: int) -> None:
    factory = load_factory(machines=6)
    expected = list(encode_stream(Plant(factory, seed=4, bad_rate=0.01).run(6), topic_root))
    sub = Subscriber(mqtt_url, f"{topic_root}/#")
    pub = MqttPublisher(mqtt_url, qos=qos, root=topic_root, window=50)
    pub.connect()
    report = simulate(factory, hours=6, seed=4, sink=pub, root=topic_root, bad_rate=0.01)
    assert report.messages == len(expected) and report.malformed > 0
    assert sub.wait_for(lambda got: len(got) >= len(expected)), f"{len(sub.got)}/{len(expected)}"
    sub.close()
    assert sorted(sub.got) == sorted(expected)  # bytes identical; order per topic kept
    per_topic = [p for t, p in sub.got if t == expected[0][0]]
    assert per_topic == [p for t, p in expected if t == expected[0][0]]


def test_command_message_triggers_a_maintenance_event(mqtt_url: str, topic_root: str) -> None:
    factory = load_factory(machines=3)
    plant = Plant(factory, seed=1)
    machine = plant.units[0]
    sub = Subscriber(mqtt_url, f"{topic_root}/+/{machine.id}/event")
    pub = MqttPublisher(mqtt_url, qos=1, root=topic_root)
    pub.connect()
    # the alert side publishes an order; wait until the simulator has it queued
    sub.client.publish(
        command_topic(machine.site, machine.id, topic_root), command_payload("inspection", 7), qos=1
    )
    deadline = time.monotonic() + TIMEOUT_S
    while pub.commands.empty() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pub.commands.empty(), "the order never reached the simulator"
    report = stream_to(
        plant.run(6), pub, root=topic_root, start=factory.start, hours=6, plant=plant
    )
    assert report.orders == 1

    def has_maintenance(got: list[tuple[str, bytes]]) -> bool:
        return any(json.loads(p).get("event") == "maintenance" for _, p in got)

    assert sub.wait_for(has_maintenance)
    sub.close()
    events = [json.loads(p) for _, p in sub.got]
    maint = [e for e in events if e["event"] == "maintenance"]
    assert len(maint) == 1
    assert maint[0]["kind"] == "inspection" and maint[0]["detail"]["alert_id"] == 7
    assert maint[0]["duration_s"] == pytest.approx(3600.0, abs=factory.telemetry_interval_s)
    states = [e.get("state") for e in events if e["event"] == "state"]
    assert states[:2] == ["maintenance", "running"]


def test_bad_command_is_dropped_and_the_loop_survives(mqtt_url: str, topic_root: str) -> None:
    pub = MqttPublisher(mqtt_url, qos=1, root=topic_root)
    pub.connect()
    sub = Subscriber(mqtt_url, f"{topic_root}/never")
    topic = command_topic("s1", "s1-cnc-000", topic_root)
    for payload in (b"\xff\xfe", b"[]", b'{"action": "polish"}', command_payload("repair", None)):
        sub.client.publish(topic, payload, qos=1)
    deadline = time.monotonic() + TIMEOUT_S
    while pub.commands.empty() and time.monotonic() < deadline:
        time.sleep(0.02)
    cmd = pub.commands.get(timeout=1)
    assert (cmd.machine, cmd.action, cmd.alert_id) == ("s1-cnc-000", "repair", None)
    assert pub.commands.empty()
    pub.close()
    sub.close()


def _start_mosquitto(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    proc = subprocess.Popen(
        [MOSQUITTO or "mosquitto", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("private mosquitto did not start")


@pytest.mark.skipif(MOSQUITTO is None, reason="needs the mosquitto binary for a private broker")
def test_publisher_reconnects_and_delivers_after_a_broker_restart(tmp_path: Path) -> None:
    port = free_port()
    broker = _start_mosquitto(port, tmp_path)
    pub = MqttPublisher(f"mqtt://127.0.0.1:{port}", qos=1, root="r/v1", subscribe_commands=False)
    try:
        pub.connect()
        for i in range(100):
            pub.send("r/v1/s1/m/telemetry", b'{"n":%d}' % i)
        assert pub.flush(TIMEOUT_S)
        broker.terminate()
        broker.wait(TIMEOUT_S)
        sender = threading.Thread(
            target=lambda: [pub.send("r/v1/s1/m/telemetry", b"after") for _ in range(100)]
        )
        sender.start()  # blocks while the broker is down
        # restart only once the publisher has seen the broker go (the case under test)
        deadline = time.monotonic() + TIMEOUT_S
        while pub.disconnects < 1 and time.monotonic() < deadline:
            time.sleep(0.02)  # polling for the event, not a fixed wait
        broker = _start_mosquitto(port, tmp_path)
        sender.join(TIMEOUT_S * 2)
        assert not sender.is_alive()
        assert pub.flush(TIMEOUT_S)  # every message acknowledged by the restarted broker
        assert pub.disconnects >= 1 and pub.outstanding() == 0
    finally:
        pub.close()
        broker.terminate()
        broker.wait(TIMEOUT_S)


@pytest.mark.skipif(MOSQUITTO is None, reason="needs the mosquitto binary for a private broker")
def test_stop_ends_a_stream_waiting_for_a_dead_broker(tmp_path: Path) -> None:
    port = free_port()
    broker = _start_mosquitto(port, tmp_path)
    pub = MqttPublisher(f"mqtt://127.0.0.1:{port}", qos=1, root="r/v1", subscribe_commands=False)
    pub.connect()
    broker.terminate()
    broker.wait(TIMEOUT_S)
    factory = load_factory(machines=3)
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()  # what the SIGTERM handler does
    t0 = time.monotonic()
    report = simulate(factory, hours=24, seed=0, sink=pub, root="r/v1", stop=stop)
    assert time.monotonic() - t0 < TIMEOUT_S
    assert 0 <= report.messages < 3 * 24 * 12

"""Simulator throughput: messages per second to JSON lines and to a real MQTT broker.

``bench_simulator()`` is what ``forewarn bench simulator`` calls. The MQTT figures are measured
under a unique topic root; a subscriber in the same process counts what the broker delivered.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from forewarn.factory import Factory, load_factory
from simulator.app import simulate
from simulator.engine import Plant
from simulator.mqtt import MqttPublisher
from simulator.sinks import JsonlSink

DRAIN_WAIT_S = 10.0


class _Counter:
    """Counts messages delivered under ``root`` (a subscriber on its own paho client)."""

    def __init__(self, host: str, port: int, root: str) -> None:
        self.n = 0
        self._ready = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(f"{root}/#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p=None: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        if not self._ready.wait(10):
            raise RuntimeError("bench subscriber could not subscribe")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.n += 1

    def wait_for(self, n: int, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while self.n < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.n

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def bench_simulator(
    machines: int = 1000,
    sim_hours: float = 6.0,
    seed: int = 0,
    mqtt_url: str | None = None,
    qos: tuple[int, ...] = (0, 1),
    factory: Factory | None = None,
    verify: bool = True,
) -> dict[str, Any]:
    """Generation, JSON-lines and (if ``mqtt_url``) MQTT rates for ``machines`` machines.

    Rates are wall-clock messages per second (and per CPU second of this process, which is
    steadier on a shared machine). ``verify`` adds a subscriber that counts deliveries.
    """
    f = factory.scaled(machines) if factory is not None else load_factory(machines=machines)
    out: dict[str, Any] = {"machines": machines, "sim_hours": sim_hours}

    t0, c0 = time.perf_counter(), time.process_time()
    plant = Plant(f, seed)
    n = sum(1 for _ in plant.run(sim_hours))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out.update(
        messages=n, generate_msgs_per_s=round(n / wall), generate_msgs_per_cpu_s=round(n / cpu)
    )

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.jsonl"
        c0 = time.process_time()
        rep = simulate(f, hours=sim_hours, seed=seed, sink=JsonlSink(path))
        out["jsonl_msgs_per_s"] = round(rep.messages / rep.wall_s)
        out["jsonl_msgs_per_cpu_s"] = round(rep.messages / (time.process_time() - c0))
        out["jsonl_bytes"] = path.stat().st_size

    if mqtt_url is not None:
        for q in qos:
            root = f"forewarn-bench-{uuid.uuid4().hex[:8]}/v1"
            pub = MqttPublisher(mqtt_url, qos=q, root=root, subscribe_commands=False)
            counter = _Counter(pub.host, pub.port, root) if verify else None
            try:
                pub.connect()
                c0 = time.process_time()
                rep = simulate(f, hours=sim_hours, seed=seed, sink=pub, root=root)
                cpu = time.process_time() - c0
                out[f"mqtt_qos{q}_msgs_per_s"] = round(rep.messages / rep.wall_s)
                out[f"mqtt_qos{q}_msgs_per_cpu_s"] = round(rep.messages / cpu)
                if counter is not None:
                    out[f"mqtt_qos{q}_received"] = counter.wait_for(rep.messages, DRAIN_WAIT_S)
            finally:
                if counter is not None:
                    counter.close()
    return out

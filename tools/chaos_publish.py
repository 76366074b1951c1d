"""The chaos run's publisher process: a known message set at QoS 1, resent until the broker acks it.

``python -m tools.chaos_publish URL MESSAGES MACHINES BASE_EPOCH RATE`` publishes
:func:`chaos_messages` at about RATE msg/s and prints ``acked N`` progress lines, then ``done N``.
A message counts as published only once its PUBACK arrived; one that was not acked (the broker
was restarting) is published again, so the set reaching the broker is at-least-once and complete.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from forewarn.contract import Telemetry, encode, topic_for

SITE = "chaos"
MACHINE_PREFIX = "chaos-m"
SENSORS = ("vibration_rms", "bearing_temp", "flow", "pressure")
WINDOW = 200  # messages published before waiting for their acks (paho's mid must not wrap)
ACK_TIMEOUT_S = 5.0  # a window's unacked messages are resent after this long
PROGRESS_EVERY = 100


def machine_ids(machines: int) -> list[str]:
    return [f"{MACHINE_PREFIX}{i:03d}" for i in range(machines)]


def message_key(i: int, machines: int) -> tuple[str, int]:
    """(machine, seq) of the ``i``-th message: machines take turns, seq counts from 1."""
    return f"{MACHINE_PREFIX}{i % machines:03d}", 1 + i // machines


def chaos_messages(
    messages: int, machines: int, base: datetime, root: str = "forewarn/v1"
) -> Iterator[tuple[str, bytes]]:
    """The known message set as (topic, payload), valid under the contract, deterministic."""
    for i in range(messages):
        machine, seq = message_key(i, machines)
        values: dict[str, float | None] = {
            "vibration_rms": 2.0 + (i % 7) * 0.1,
            "bearing_temp": 45.0 + (i % 11),
            "flow": 120.0,
            "pressure": 6.0,
        }
        msg = Telemetry(SITE, machine, base + timedelta(seconds=seq), seq, values)
        yield topic_for(SITE, machine, "telemetry", root), encode(msg)


def _acked(info: mqtt.MQTTMessageInfo) -> bool:
    """True once the broker acknowledged the message; False if not yet or never (not connected)."""
    try:
        return info.is_published()
    except (RuntimeError, ValueError):  # published while disconnected: it is resent
        return False


def publish_all(url: str, payloads: list[tuple[str, bytes]], rate: float) -> int:
    """Publish every message until acked; return how many publish calls it took."""
    parts = urlsplit(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"chaos-pub-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(WINDOW)
    client.reconnect_delay_set(1, 2)
    client.connect_async(parts.hostname or "127.0.0.1", parts.port or 1883, 10)
    client.loop_start()
    pending = list(range(len(payloads)))
    acked = calls = 0
    started = time.monotonic()
    sent = 0
    try:
        while pending:
            window, pending = pending[:WINDOW], pending[WINDOW:]
            while not client.is_connected():
                time.sleep(0.05)
            infos = []
            for i in window:
                topic, payload = payloads[i]
                infos.append((i, client.publish(topic, payload, qos=1)))
                calls += 1
                sent += 1
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            deadline = time.monotonic() + ACK_TIMEOUT_S
            while time.monotonic() < deadline and not all(_acked(x) for _, x in infos):
                time.sleep(0.01)
            retry = [i for i, x in infos if not _acked(x)]
            before = acked
            acked += len(window) - len(retry)
            if acked // PROGRESS_EVERY != before // PROGRESS_EVERY or retry:
                print(f"acked {acked}", flush=True)
            pending = retry + pending  # resend what the broker did not confirm
    finally:
        client.disconnect()
        client.loop_stop()
    print(f"done {acked} calls {calls}", flush=True)
    return calls


def main(argv: list[str]) -> None:
    url, messages, machines, base_epoch, rate = argv
    base = datetime.fromtimestamp(float(base_epoch), UTC)
    payloads = list(chaos_messages(int(messages), int(machines), base))
    publish_all(url, payloads, float(rate))


if __name__ == "__main__":
    main(sys.argv[1:])

"""The fleet bench's lean QoS 1 publisher against the real Mosquitto: every message arrives intact, every PUBACK counted."""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest.service import broker_address
from tools.bench.mqtt_load import RawPublisher


def test_raw_publisher_delivers_every_message_and_counts_every_ack(mqtt_url: str) -> None:
    host, port, _tls, _v5 = broker_address(mqtt_url)
    root = f"rawpub-{uuid.uuid4().hex[:8]}"
    n, batch = 3000, 250
    got: list[tuple[str, bytes]] = []
    arrived, subscribed = threading.Condition(), threading.Event()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with arrived:
            got.append((msg.topic, msg.payload))
            arrived.notify_all()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{root}-sub")
    sub.on_message = on_message
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.connect(host, port)
    sub.subscribe(f"{root}/#", qos=1)
    sub.loop_start()
    try:
        assert subscribed.wait(10), "no SUBACK"
        pub = RawPublisher(host, port, f"{root}-pub", max_inflight=500)
        messages = [  # payloads from 9 to over 300 bytes: one- and two-byte remaining lengths
            (
                f"{root}/m-{i % 37}/telemetry".encode(),
                f'{{"i":{i},"pad":"{"x" * (i % 300)}"}}'.encode(),
            )
            for i in range(n)
        ]
        for start in range(0, n, batch):
            pub.publish_many(messages[start : start + batch])
            # batch by batch, so the subscriber keeps up: the machine's broker queues 1,000 per client
            with arrived:
                assert arrived.wait_for(lambda s=start: len(got) >= s + batch, 30), len(got)
        assert pub.wait_inflight(0, 30)
        assert pub.acked == pub.sent == n
        pub.close()
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert sorted(got) == sorted((t.decode(), p) for t, p in messages)

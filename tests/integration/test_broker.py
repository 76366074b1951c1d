"""The local broker of the embedded defaults: mosquitto from PATH, else amqtt, each in its own process.

Both must deliver QoS 1 messages queued while a persistent-session subscriber was offline (what
ingest relies on across a restart). amqtt 0.12 does so only for non-anonymous sessions, which is
why its URL carries a user name.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from forewarn.broker import find_mosquitto, local_broker

pytestmark = pytest.mark.timeout(120)


def _client(url: str, client_id: str, got: list[bytes] | None = None) -> mqtt.Client:
    parts = urlsplit(url)
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv311,
        clean_session=got is None,
    )
    if parts.username:
        c.username_pw_set(parts.username)
    if got is not None:
        c.on_message = lambda _c, _u, m: got.append(m.payload)
    connected = threading.Event()
    c.on_connect = lambda *_a: connected.set()
    c.connect(parts.hostname or "127.0.0.1", parts.port or 1883, 30)
    c.loop_start()
    assert connected.wait(10)
    return c


def _wait(cond, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
def test_local_broker_keeps_qos1_messages_for_an_offline_persistent_session(
    kind: str, tmp_path: Path
) -> None:
    if kind == "mosquitto" and find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    sub_id = f"sub-{uuid.uuid4().hex[:8]}"
    with local_broker(tmp_path, kind=kind) as url:  # type: ignore[arg-type]
        assert url.startswith("mqtt://") and "127.0.0.1:" in url
        got: list[bytes] = []
        sub = _client(url, sub_id, got)
        subacked = threading.Event()
        sub.on_subscribe = lambda *_a: subacked.set()
        sub.subscribe("t/#", 1)
        assert subacked.wait(10), "no SUBACK"
        pub = _client(url, f"pub-{uuid.uuid4().hex[:8]}")
        pub.publish("t/live", b"live", qos=1).wait_for_publish(5)
        _wait(lambda: got == [b"live"])
        assert got == [b"live"]

        sub.disconnect()
        sub.loop_stop()
        for i in range(20):
            pub.publish("t/offline", b"%d" % i, qos=1).wait_for_publish(5)
        got.clear()
        sub = _client(url, sub_id, got)
        _wait(lambda: len(got) >= 20)
        assert sorted(got, key=int) == [b"%d" % i for i in range(20)]
        sub.disconnect()
        pub.disconnect()
        port = urlsplit(url).port
    # stopped cleanly: the port is free again
    import socket

    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port or 0), 1).close()


def test_ingest_over_the_amqtt_fallback_stores_every_message(db_url: str, tmp_path: Path) -> None:
    """The pure-Python path end to end: MQTT 3.1.1, a user name, manual acks after commit."""
    from tests.integration.ingest_support import (
        good_messages,
        running,
        seed,
        stored_keys,
        wait_until,
        worker_settings,
    )

    root = f"forewarn-test-{uuid.uuid4().hex[:8]}/v1"
    machines = seed(db_url, machines=3)
    msgs = good_messages(root, machines, 150)
    with local_broker(tmp_path, kind="amqtt") as url:
        assert "protocol=3.1.1" in url and urlsplit(url).username
        with running(worker_settings(root), db_url, url) as worker:
            pub = _client(url, f"pub-{uuid.uuid4().hex[:8]}")
            for topic, payload, _key in msgs:
                pub.publish(topic, payload, qos=1).wait_for_publish(5)
            wait_until(lambda: worker.messages >= len(msgs), 60, "amqtt messages committed")
            pub.disconnect()
    assert sorted(stored_keys(db_url)) == sorted(k for *_, k in msgs)

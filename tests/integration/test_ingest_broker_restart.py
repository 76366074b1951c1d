"""A broker restart during ingest: paho reconnects with backoff, the persistent session resumes,
nothing is lost (a private mosquitto with persistence, so the shared broker is untouched)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from forewarn.broker import find_mosquitto, free_port, mosquitto_config
from tests.integration.ingest_support import (
    Publisher,
    count,
    good_messages,
    running,
    seed,
    stored_keys,
    wait_until,
    worker_settings,
)

pytestmark = pytest.mark.timeout(180)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        return True
    except OSError:
        return False


def _mosquitto(conf: Path, log: Path, port: int) -> subprocess.Popen[bytes]:
    binary = find_mosquitto()
    assert binary is not None
    with log.open("ab") as out:
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=out, stderr=out)
    wait_until(lambda: _listening(port) or proc.poll() is not None, 15, "mosquitto listening")
    assert proc.poll() is None, log.read_text()
    return proc


def test_broker_restart_during_ingest_loses_nothing(
    db_url: str, topic_root: str, tmp_path: Path
) -> None:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(mosquitto_config(port, tmp_path))
    log = tmp_path / "mosquitto.log"
    url = f"mqtt://127.0.0.1:{port}"
    machines = seed(db_url, machines=5)
    before = good_messages(topic_root, machines, 300)
    after = good_messages(topic_root, machines, 300, first_seq=1000)
    broker = _mosquitto(conf, log, port)
    try:
        with running(worker_settings(topic_root), db_url, url):
            pub = Publisher(url)
            pub.publish([(t, p) for t, p, _ in before])
            pub.close()
            wait_until(lambda: count(db_url, "readings") == len(before), what="first part stored")
            broker.terminate()  # SIGTERM: mosquitto saves sessions and queued messages
            broker.wait(10)
            wait_until(lambda: not _listening(port), 15, "port released")
            broker = _mosquitto(conf, log, port)
            pub = Publisher(url)  # publishes before ingest has reconnected are queued for it
            pub.publish([(t, p) for t, p, _ in after])
            pub.close()
            wait_until(lambda: count(db_url, "readings") == len(before) + len(after), 60, "resume")
    finally:
        broker.terminate()
        broker.wait(10)
    keys = stored_keys(db_url)
    assert len(keys) == len(set(keys)) and set(keys) == {k for *_, k in before + after}

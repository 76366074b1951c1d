"""The CLI creates hashed keys; resolved alerts reach a real broker as maintenance orders."""

from __future__ import annotations

import hashlib
import json
import queue

import paho.mqtt.client as mqtt
import psycopg
from typer.testing import CliRunner

from forewarn.cli import app
from forewarn.orders import mqtt_publisher
from forewarn.settings import load_settings
from forewarn.storage import alerts as store
from tests.factories import T0
from tests.fixtures.app import build_env


def test_keys_create_prints_the_key_once_and_stores_its_hash(db_url: str, monkeypatch) -> None:
    monkeypatch.setenv("FOREWARN_DB__URL", db_url)
    result = CliRunner().invoke(app, ["keys", "create", "--name", "cmms", "--role", "maintenance"])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select role, key_hash from api_keys where name = 'cmms'").fetchone()
    assert row == ("maintenance", hashlib.sha256(key.encode()).hexdigest())
    bad = CliRunner().invoke(app, ["keys", "create", "--name", "x", "--role", "root"])
    assert bad.exit_code != 0


def test_resolve_publishes_a_maintenance_order_over_mqtt(
    db_url: str, mqtt_url: str, topic_root: str
) -> None:
    settings = load_settings(
        mqtt={"url": mqtt_url, "topic_root": topic_root, "client_id": f"t-{topic_root[:20]}"}
    )
    got: queue.Queue[tuple[str, bytes]] = queue.Queue()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_message = lambda c, u, m: got.put((m.topic, m.payload))
    host, port, _ = settings.mqtt.host_port()
    sub.connect(host, port)
    sub.subscribe(f"{topic_root}/+/+/command", qos=1)
    sub.loop_start()
    publish, close = mqtt_publisher(settings)
    try:
        for env in build_env(db_url, mqtt={"url": mqtt_url, "topic_root": topic_root}):
            env.client.app.state.publish = publish
            with env.conn() as conn:
                a = store.NewAlert(
                    "s1-pump-001", "bearing", "high", 0.9, 5.0, 1.0, 9.0, {}, None, 1.0, "x"
                )
                aid = store.insert_alert(conn, a, actor="system", now=T0)["id"]
            r = env.client.post(
                f"/v1/alerts/{aid}/resolve", json={"action": "repair"}, headers=env.h("operator")
            )
            assert r.status_code == 200
            topic, payload = got.get(timeout=10)
            assert topic == f"{topic_root}/s1/s1-pump-001/command"
            assert json.loads(payload) == {"action": "repair", "alert_id": aid}
    finally:
        close()
        sub.loop_stop()
        sub.disconnect()

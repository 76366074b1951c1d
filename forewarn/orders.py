"""Maintenance orders: the message the alert side sends a plant when an alert is resolved.

Topic and payload (the simulator subscribes; :mod:`forewarn.actions` publishes after commit)::

    {root}/{site}/{machine}/command
    {"action": "inspection" | "preventive" | "repair", "alert_id": 42 | null}
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable

from forewarn.settings import Settings

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], None]
PUBLISH_TIMEOUT_S = 10.0


def command_topic(site: str, machine: str, root: str = "forewarn/v1") -> str:
    """The topic a maintenance order for ``machine`` is published on."""
    return f"{root}/{site}/{machine}/command"


def command_payload(action: str, alert_id: int | None = None) -> bytes:
    """A maintenance order as the simulator expects it."""
    return json.dumps({"action": action, "alert_id": alert_id}, separators=(",", ":")).encode()


def mqtt_publisher(
    settings: Settings, *, name: str = "orders"
) -> tuple[Publish, Callable[[], None]]:
    """(publish, close) on the configured broker; QoS 1, paho queues while reconnecting.

    ``close`` waits (up to PUBLISH_TIMEOUT_S) for queued orders to be acknowledged by the broker,
    so a short-lived process (the CLI) loses none.
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    host, port, tls = settings.mqtt.host_port()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{settings.mqtt.client_id}-{name}-{uuid.uuid4().hex[:8]}",
    )
    if settings.mqtt.username:
        password = settings.mqtt.password.get_secret_value() if settings.mqtt.password else None
        client.username_pw_set(settings.mqtt.username, password)
    if tls:
        client.tls_set()
    client.reconnect_delay_set(1, 30)
    client.connect_async(host, port, keepalive=settings.mqtt.keepalive_s)
    client.loop_start()
    pending: list[mqtt.MQTTMessageInfo] = []

    def publish(topic: str, payload: bytes) -> None:
        info = client.publish(topic, payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise RuntimeError(f"MQTT publish to {topic} failed: rc={info.rc}")
        pending[:] = [p for p in pending if not p.is_published()]
        pending.append(info)

    def close() -> None:
        for info in pending:
            try:
                info.wait_for_publish(PUBLISH_TIMEOUT_S)
            except (RuntimeError, ValueError) as exc:
                log.warning("a maintenance order was not confirmed by the broker: %s", exc)
        client.loop_stop()
        client.disconnect()

    return publish, close

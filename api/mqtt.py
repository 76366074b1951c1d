"""Maintenance orders over MQTT: a small ``publish(topic, payload)`` callable for create_app."""

from __future__ import annotations

import logging
from collections.abc import Callable

from forewarn.settings import Settings

log = logging.getLogger(__name__)


def mqtt_publisher(settings: Settings) -> tuple[Callable[[str, bytes], None], Callable[[], None]]:
    """(publish, close) on the configured broker; QoS 1, paho queues while reconnecting."""
    import paho.mqtt.client as mqtt

    host, port, tls = settings.mqtt.host_port()
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"{settings.mqtt.client_id}-api-orders"
    )
    if settings.mqtt.username:
        password = settings.mqtt.password.get_secret_value() if settings.mqtt.password else None
        client.username_pw_set(settings.mqtt.username, password)
    if tls:
        client.tls_set()
    client.reconnect_delay_set(1, 30)
    client.connect_async(host, port, keepalive=settings.mqtt.keepalive_s)
    client.loop_start()

    def publish(topic: str, payload: bytes) -> None:
        info = client.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
            raise RuntimeError(f"MQTT publish to {topic} failed: rc={info.rc}")

    def close() -> None:
        client.loop_stop()
        client.disconnect()

    return publish, close

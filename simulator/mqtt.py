"""Publish simulated messages over MQTT (paho 2) and receive maintenance orders.

Command topic (the simulator subscribes; the alert side publishes)::

    {root}/{site}/{machine}/command      e.g. forewarn/v1/s1/s1-pump-003/command
    payload: {"action": "inspection" | "preventive" | "repair", "alert_id": 42 | null}

Each valid order is applied through :meth:`simulator.engine.Plant.apply_maintenance` at the current
simulated time; the machine stops at its next tick and a ``maintenance`` event (with ``alert_id`` in
its ``detail``) is published when the work ends. A bad order is logged and dropped.

Publishing: QoS 0 or 1; the client reconnects with exponential backoff (1 s .. 30 s) and publishing
pauses while disconnected. Messages are published in windows: at most ``window`` not yet acknowledged
(QoS 1; paho refuses more than 65,535 outstanding) or not yet written (QoS 0), and :meth:`close`
waits for the rest.
"""

from __future__ import annotations

import json
import logging
import queue
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from forewarn.contract import MAINTENANCE_KINDS
from forewarn.errors import ForewarnError
from forewarn.orders import command_payload, command_topic

log = logging.getLogger(__name__)

__all__ = [
    "Command",
    "MqttPublisher",
    "Stopped",
    "command_payload",
    "command_topic",
    "parse_command",
]

WINDOW = 2_000  # messages not yet acknowledged (QoS 1) or written (QoS 0) before send() waits
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
CONNECT_TIMEOUT_S = 30.0
FLUSH_TIMEOUT_S = 60.0  # close() waits this long for outstanding acknowledgements
STOP_FLUSH_S = 5.0  # ... or this long when stopping (SIGTERM gives us 20 s before SIGKILL)


class Stopped(ForewarnError):
    """Publishing was stopped while waiting for the broker."""


@dataclass(frozen=True, slots=True)
class Command:
    site: str
    machine: str
    action: str
    alert_id: int | None


def parse_command(topic: str, payload: bytes, root: str) -> Command:
    """Parse one order; ValueError with a reason when it is not one."""
    parts = topic[len(root) + 1 :].split("/") if topic.startswith(root + "/") else []
    if len(parts) != 3 or parts[2] != "command":
        raise ValueError(f"not a command topic: {topic[:200]!r}")
    body = json.loads(payload)
    if not isinstance(body, dict):
        raise ValueError("command payload must be a JSON object")
    action = body.get("action")
    if action not in MAINTENANCE_KINDS:
        raise ValueError(f"action must be one of {', '.join(MAINTENANCE_KINDS)}")
    alert_id = body.get("alert_id")
    if alert_id is not None and (not isinstance(alert_id, int) or isinstance(alert_id, bool)):
        raise ValueError("alert_id must be an integer or null")
    return Command(parts[0], parts[1], action, alert_id)


class MqttPublisher:
    """A paho client that publishes in acknowledged windows and queues incoming commands."""

    def __init__(
        self,
        url: str,
        *,
        qos: int = 1,
        root: str = "forewarn/v1",
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        window: int = WINDOW,
        subscribe_commands: bool = True,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp") or not parts.hostname:
            raise ForewarnError(f"bad MQTT URL {url!r}: expected mqtt://host:port")
        self.host = parts.hostname
        self.tls = parts.scheme == "mqtts"
        self.port = parts.port or (8883 if self.tls else 1883)
        # credentials in the URL (mqtt://user:pass@host:port) unless given explicitly
        username = username or parts.username
        password = password or parts.password
        self.qos = qos
        self.root = root
        self.window = window
        self.commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self.stop = threading.Event()  # set to give up waiting (stream_to shares its stop event)
        self._subscribe_commands = subscribe_commands
        self._connected = threading.Event()
        self._subscribed = threading.Event()  # the command subscription is acknowledged
        self._cond = threading.Condition()
        self._sent = 0  # messages handed to paho
        self._acked = 0  # PUBACKs received (QoS 1) or messages written (QoS 0)
        self.disconnects = 0
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"forewarn-sim-{uuid.uuid4().hex[:8]}",
            clean_session=True,
        )
        if username:
            self.client.username_pw_set(username, password)
        if self.tls:
            self.client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        self.client.max_queued_messages_set(0)
        # unlimited in flight: paho rescans its whole queue on every PUBACK when a limit is set;
        # the window below bounds what is outstanding instead
        self.client.max_inflight_messages_set(0)
        self.client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    # -- callbacks: run on paho's thread, never raise ---------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None
    ) -> None:
        if getattr(rc, "is_failure", False):
            log.warning("MQTT connect to %s:%s refused: %s", self.host, self.port, rc)
            return
        if self._subscribe_commands:  # (re)subscribe on every connect: restored after reconnect
            client.subscribe(f"{self.root}/+/+/command", qos=1)
        log.info("MQTT connected to %s:%s", self.host, self.port)
        self._connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None
    ) -> None:
        self._connected.clear()
        if getattr(rc, "is_failure", False):
            self.disconnects += 1
            log.warning("MQTT connection lost (%s); paho reconnects with backoff", rc)

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any = None
    ) -> None:
        with self._cond:  # QoS 1: PUBACK received; QoS 0: written to the socket
            self._acked += 1
            self._cond.notify_all()

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, rcs: Any, props: Any = None
    ) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.commands.put(parse_command(msg.topic, bytes(msg.payload), self.root))
        except (ValueError, UnicodeDecodeError) as exc:
            log.warning("dropped bad command on %s: %s", msg.topic[:200], exc)
        except Exception:  # a callback must never kill paho's loop
            log.exception("unexpected error handling command on %s", msg.topic[:200])

    # -- API ----------------------------------------------------------------------------------------
    def connect(self, timeout: float = CONNECT_TIMEOUT_S) -> None:
        """Start the network loop; wait until connected (and the command subscription is active)."""
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        ok = self._connected.wait(timeout)
        if ok and self._subscribe_commands:
            ok = self._subscribed.wait(max(0.0, deadline - time.monotonic()))
        if not ok:
            self.client.loop_stop()
            raise ForewarnError(
                f"MQTT broker {self.host}:{self.port} not reachable within {timeout:g}s"
            )

    def outstanding(self) -> int:
        with self._cond:
            return self._sent - self._acked

    def send(self, topic: str, payload: bytes, malformed: str | None = None) -> None:
        """Publish one message; waits while disconnected or while a full window is unacknowledged.

        Raises :class:`Stopped` if ``self.stop`` is set while waiting (e.g. SIGTERM, broker down).
        """
        while not self._connected.is_set():
            if self.stop.is_set():
                raise Stopped("stopped while waiting for the broker")
            self._connected.wait(0.5)
        with self._cond:
            while self._sent - self._acked >= self.window:
                if self.stop.is_set():
                    raise Stopped("stopped while waiting for acknowledgements")
                self._cond.wait(0.5)
            self._sent += 1
        self.client.publish(topic, payload, qos=self.qos)

    def flush(self, timeout: float = FLUSH_TIMEOUT_S) -> bool:
        """Wait until every message is acknowledged (QoS 1) or written (QoS 0); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._sent > self._acked:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 1.0))
        return True

    def close(self) -> None:
        """Wait for pending acks (briefly when stopping), then disconnect."""
        if not self.flush(STOP_FLUSH_S if self.stop.is_set() else FLUSH_TIMEOUT_S):
            log.warning("%d QoS 1 messages unacknowledged at close", self.outstanding())
        self.client.disconnect()
        self.client.loop_stop()

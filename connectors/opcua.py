"""`forewarn connect opcua`: OPC UA data changes -> on-disk outbox -> contract telemetry over MQTT.

Two sides joined by the outbox (:class:`forewarn.storage.outbox.Outbox`):

- **OPC UA** (asyncio, asyncua): connect, resolve the mapped nodes (NodeIds or browse paths),
  subscribe to data changes at the sampling interval (with a server-side queue, so changes between
  two publishes are all reported), and queue each machine's changed values as one contract
  message per source timestamp. A value whose source timestamp was already queued (the initial
  notification after a reconnect) is skipped, so a reconnect writes nothing twice. A lost session
  (server restart, network) is retried with backoff: 0.5 s doubling up to ``reconnect_max_s``.
- **MQTT** (a thread, paho): publish the oldest queued messages at QoS 1 and delete them only once
  the broker acknowledged them. While the broker is unreachable the outbox grows (bounded; the
  oldest are dropped and counted); when it returns, the backlog drains in order.

Sequence numbers are the outbox's (per machine, persisted), so they survive connector restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import CollectorRegistry, Counter, Gauge

from connectors.mapping import NodeMap, browse_path, is_node_id
from forewarn.settings import OpcuaSettings
from forewarn.storage.outbox import Outbox, Reading

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.5
WATCH_S = 0.2  # how often the session is checked (and the stop flag read)
PUBLISH_BATCH = 500  # messages in flight per round trip to the broker
PUBACK_TIMEOUT_S = 10.0
SERVER_QUEUE = 100  # changes the server keeps per node between two publishes


class ConnectorMetrics:
    """What `/metrics` shows; the gauges read the outbox itself."""

    def __init__(self, outbox: Outbox) -> None:
        self.registry = r = CollectorRegistry()
        self.notifications = Counter(
            "forewarn_opcua_notifications", "OPC UA data changes received", registry=r
        )
        self.skipped = Counter(
            "forewarn_opcua_skipped",
            "Data changes already queued before (initial values after a reconnect)",
            registry=r,
        )
        self.published = Counter(
            "forewarn_opcua_published", "Messages acknowledged by the broker", registry=r
        )
        self.reconnects = Counter(
            "forewarn_opcua_server_reconnects", "OPC UA sessions (re)established", registry=r
        )
        self.server_connected = Gauge(
            "forewarn_opcua_server_connected", "1 while the OPC UA session is up", registry=r
        )
        self.broker_connected = Gauge(
            "forewarn_opcua_broker_connected", "1 while connected to the broker", registry=r
        )
        buffered = Gauge(
            "forewarn_opcua_buffered", "Messages in the outbox, not yet acknowledged", registry=r
        )
        buffered.set_function(lambda: len(outbox))
        dropped = Gauge(
            "forewarn_opcua_dropped",
            "Messages dropped because the outbox was full (oldest first), ever",
            registry=r,
        )
        dropped.set_function(lambda: outbox.dropped)

    def value(self, name: str) -> float:
        """A metric's current value (``forewarn_opcua_published_total`` etc.)."""
        found = self.registry.get_sample_value(name)
        return 0.0 if found is None else found


@dataclass(frozen=True, slots=True)
class MqttTarget:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    client_id: str


def mqtt_target(url: str, client_id: str, username: str | None, password: str | None) -> MqttTarget:
    parts = urlsplit(url)
    tls = parts.scheme == "mqtts"
    return MqttTarget(
        parts.hostname or "127.0.0.1",
        parts.port or (8883 if tls else 1883),
        tls,
        unquote(parts.username) if parts.username else username,
        unquote(parts.password) if parts.password else password,
        client_id,
    )


class _Publisher:
    """The MQTT side: outbox -> broker, deleting only what the broker acknowledged."""

    def __init__(self, outbox: Outbox, target: MqttTarget, metrics: ConnectorMetrics) -> None:
        self._outbox = outbox
        self._metrics = metrics
        self.wake = threading.Event()
        self._connected = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=target.client_id)
        if target.username:
            c.username_pw_set(target.username, target.password)
        if target.tls:
            c.tls_set()
        c.reconnect_delay_set(1, 30)
        c.max_inflight_messages_set(PUBLISH_BATCH)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.connect_async(target.host, target.port, keepalive=15)
        self._client = c

    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.error("broker refused the connection: %s", rc)
            return
        log.info("connected to the broker")
        self._metrics.broker_connected.set(1)
        self._connected.set()
        self.wake.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.warning("disconnected from the broker (%s); buffering on disk", rc)
        self._metrics.broker_connected.set(0)
        self._connected.clear()

    def run(self, stop: threading.Event) -> None:
        self._client.loop_start()
        try:
            while not stop.is_set():
                if not self._connected.wait(WATCH_S):
                    continue
                batch = self._outbox.peek(PUBLISH_BATCH)
                if not batch:
                    self.wake.wait(WATCH_S)
                    self.wake.clear()
                    continue
                done = self._send(batch)
                self._outbox.remove(done)
                self._metrics.published.inc(len(done))
        finally:
            self._client.disconnect()
            self._client.loop_stop()

    def _send(self, batch: list[tuple[int, str, bytes]]) -> list[int]:
        """Publish ``batch`` at QoS 1; the ids the broker acknowledged (in order, up to a gap)."""
        infos = [(i, self._client.publish(topic, payload, qos=1)) for i, topic, payload in batch]
        done: list[int] = []
        for i, info in infos:
            # raises when the message could not even be queued (no connection): not published
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(PUBACK_TIMEOUT_S)
            if not info.is_published():
                break  # connection lost: the rest stays queued and is sent again
            done.append(i)
        return done


class _Changes:
    """asyncua's data-change handler: values are grouped per machine and source timestamp."""

    def __init__(
        self,
        by_node: dict[str, tuple[str, str, str]],
        last_seen: dict[tuple[str, str], int],
        metrics: ConnectorMetrics,
        flush: Callable[[list[Reading]], None],
    ) -> None:
        self._by_node = by_node  # node id string -> (site, machine, sensor)
        self._last = last_seen
        self._metrics = metrics
        self._flush = flush
        self._pending: dict[tuple[str, str, int], dict[str, float | None]] = {}
        self._scheduled = False

    def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        try:
            self._take(node, val, data)
        except Exception:  # a bad value must never kill asyncua's notification loop
            log.exception("OPC UA data change on %s not taken", node)

    def status_change_notification(self, status: Any) -> None:
        """The server reported a subscription status change (e.g. it is shutting down)."""
        log.warning("OPC UA subscription status: %s", status)

    def _take(self, node: Node, val: Any, data: Any) -> None:
        self._metrics.notifications.inc()
        site, machine, sensor = self._by_node[node.nodeid.to_string()]
        dv = data.monitored_item.Value
        ts = dv.SourceTimestamp or dv.ServerTimestamp or datetime.now(UTC)
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
        ms = int(ts.timestamp() * 1000)
        if ms <= self._last.get((machine, sensor), -1):
            self._metrics.skipped.inc()  # already queued (the initial value after a reconnect)
            return
        self._last[(machine, sensor)] = ms
        bad = dv.StatusCode is not None and not dv.StatusCode.is_good()
        value = None if bad or not isinstance(val, int | float) else float(val)
        self._pending.setdefault((site, machine, ms), {})[sensor] = value
        if not self._scheduled:  # one flush after the notifications of this publish response
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, {}
        readings = [
            Reading(site, machine, datetime.fromtimestamp(ms / 1000, UTC), values)
            for (site, machine, ms), values in sorted(pending.items(), key=lambda kv: kv[0][2])
        ]
        self._flush(readings)


class OpcuaConnector:
    """One connector: an OPC UA session feeding the outbox, a publisher draining it."""

    def __init__(
        self,
        settings: OpcuaSettings,
        endpoint: str,
        node_map: NodeMap,
        mqtt_url: str,
        *,
        root: str,
        buffer_dir: Path,
        mqtt_username: str | None = None,
        mqtt_password: str | None = None,
    ) -> None:
        self._settings = settings
        self._endpoint = endpoint
        self._map = node_map
        self.outbox = Outbox(buffer_dir / "outbox.sqlite3", settings.buffer_max, root)
        self.metrics = ConnectorMetrics(self.outbox)
        target = mqtt_target(
            mqtt_url,
            f"{settings.client_id}-{uuid.uuid4().hex[:6]}",
            mqtt_username,
            mqtt_password,
        )
        self._publisher = _Publisher(self.outbox, target, self.metrics)
        self._interval_ms = node_map.sampling_interval_ms or settings.sampling_interval_ms
        self._last = self.outbox.last_seen()

    def _queue(self, readings: list[Reading]) -> None:
        dropped = self.outbox.add(readings)
        if dropped:
            log.warning("outbox full: dropped the %d oldest messages", dropped)
        self._publisher.wake.set()

    def run(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set. Blocks; installs no signal handlers."""
        publisher = threading.Thread(
            target=self._publisher.run, args=(stop,), name="opcua-mqtt", daemon=True
        )
        publisher.start()
        try:
            asyncio.run(self._opc_loop(stop))
        finally:
            stop.set()
            publisher.join(30)
            self.outbox.close()

    async def _opc_loop(self, stop: threading.Event) -> None:
        delay = BACKOFF_MIN_S
        while not stop.is_set():
            try:
                await self._session(stop)
                delay = BACKOFF_MIN_S
            except Exception as exc:  # any failure of a session: log it and reconnect
                log.warning(
                    "OPC UA session to %s lost: %s: %s (retry in %.1fs)",
                    self._endpoint,
                    type(exc).__name__,
                    exc,
                    delay,
                )
            finally:
                self.metrics.server_connected.set(0)
            deadline = asyncio.get_running_loop().time() + delay
            while not stop.is_set() and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(WATCH_S)
            delay = min(delay * 2, self._settings.reconnect_max_s)

    async def _configure(self, client: Client) -> None:
        s = self._settings
        if s.security_policy != "None":
            if s.certificate is None or s.private_key is None:
                raise ValueError("an OPC UA security policy needs a certificate and a private key")
            parts = [s.security_policy, s.security_mode, str(s.certificate), str(s.private_key)]
            if s.server_certificate is not None:
                parts.append(str(s.server_certificate))
            await client.set_security_string(",".join(parts))
        if s.username:
            client.set_user(s.username)
            if s.password is not None:
                client.set_password(s.password.get_secret_value())

    async def _resolve(self, client: Client) -> dict[str, tuple[str, str, str]]:
        """Node id string -> (site, machine, sensor) for every mapped node."""
        sites = {m.id: m.site for m in self._map.machines}
        out: dict[str, tuple[str, str, str]] = {}
        for machine, sensor, ref in self._map.nodes():
            if is_node_id(ref):
                node = client.get_node(ref)
            else:
                node = await client.nodes.root.get_child(browse_path(ref))
            out[node.nodeid.to_string()] = (sites[machine], machine, sensor)
        return out

    async def _session(self, stop: threading.Event) -> None:
        client = Client(url=self._endpoint, timeout=4)
        await self._configure(client)
        async with client:
            by_node = await self._resolve(client)
            handler = _Changes(by_node, self._last, self.metrics, self._queue)
            sub = await client.create_subscription(self._interval_ms, handler)
            await sub.subscribe_data_change(
                [client.get_node(n) for n in by_node],
                sampling_interval=ua.Double(self._interval_ms),
                queuesize=SERVER_QUEUE,
            )
            self.metrics.reconnects.inc()
            self.metrics.server_connected.set(1)
            log.info("OPC UA: subscribed to %d nodes on %s", len(by_node), self._endpoint)
            while not stop.is_set():
                await asyncio.sleep(WATCH_S)
                await client.check_connection()  # raises once the session is gone
            handler.flush()

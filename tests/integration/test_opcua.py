"""The OPC UA connector against a real asyncua server, a private Mosquitto and a real ingest worker.

The server (started here on a free port, stopped and started again), the broker (a private
mosquitto with persistence, stopped for an outage: never the machine's broker) and the connector
(stopped and started again on the same outbox) each go away once; every value the server
published must be stored exactly once, with sequence numbers that never repeat.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import urlopen

import paho.mqtt.client as mqtt
import psycopg
import pytest
from asyncua import Server, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.server.user_managers import User, UserManager, UserRole
from cryptography.x509.oid import ExtendedKeyUsageOID
from paho.mqtt.enums import CallbackAPIVersion

from connectors.mapping import load_map
from connectors.opcua import OpcuaConnector
from forewarn.broker import find_mosquitto, free_port, mosquitto_config
from forewarn.settings import OpcuaSettings, load_settings
from tests.integration.ingest_support import running, seed, wait_until

pytestmark = [pytest.mark.opcua, pytest.mark.timeout(180)]

SENSORS = {"BearingTemp": "bearing_temp", "Flow": "flow"}
SERVER_URI = "urn:forewarn:test:server"
CLIENT_URI = "urn:example.org:FreeOpcUa:opcua-asyncio"  # asyncua client application URI


class OperatorOnly(UserManager):
    """The secure server's users: one operator with a password, nobody else."""

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None,
        certificate: Any = None,
    ) -> User | None:  # fmt: skip
        if (username, password) == ("operator", "op-secret"):
            return User(role=UserRole.User, name=username)
        return None


def _certificate(folder: Path, name: str, uri: str, use: Any) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.der", folder / f"{name}.pem"
    # in a thread of its own: a session-wide sync Playwright keeps an event loop in the main thread
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(
            asyncio.run,
            setup_self_signed_certificate(key, cert, uri, "127.0.0.1", [use], {"commonName": name}),
        ).result(60)
    return cert, key


class OpcServer:
    """An asyncua server in its own thread and event loop, with two pumps of two variables."""

    def __init__(self, port: int, secure: tuple[Path, Path] | None = None) -> None:
        self.port = port
        self.secure = secure  # (certificate, key): Basic256Sha256 SignAndEncrypt + users only
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: Server | None = None
        self.last_ms = 0

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def start(self) -> OpcServer:
        self._call(self._start())
        return self

    async def _start(self) -> None:
        server = Server(user_manager=OperatorOnly() if self.secure else None)
        await server.init()
        server.set_endpoint(f"opc.tcp://127.0.0.1:{self.port}/forewarn/")
        if self.secure:
            await server.set_application_uri(SERVER_URI)
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
            server.set_security_IDs(["Username"])
            await server.load_certificate(str(self.secure[0]))
            await server.load_private_key(str(self.secure[1]))
        idx = await server.register_namespace("urn:forewarn:test")
        for pump in ("Pump0", "Pump1"):
            obj = await server.nodes.objects.add_object(f"ns={idx};s={pump}", f"{idx}:{pump}")
            for var in SENSORS:
                await obj.add_variable(f"ns={idx};s={pump}.{var}", f"{idx}:{var}", 0.0)
        await server.start()
        self.server = server

    def write(self, pump: str, var: str, value: float) -> None:
        """Write a value with its own source timestamp, as a PLC would stamp it."""

        async def _write() -> None:
            assert self.server is not None
            node = self.server.get_node(f"ns=2;s={pump}.{var}")
            # distinct source timestamps even for writes within the same millisecond
            self.last_ms = max(int(time.time() * 1000), self.last_ms + 1)
            dv = ua.DataValue(
                ua.Variant(value, ua.VariantType.Double),
                SourceTimestamp=datetime.fromtimestamp(self.last_ms / 1000, UTC),
            )
            await node.write_value(dv)

        self._call(_write())

    def stop(self) -> None:
        if self.server is not None:
            self._call(self.server.stop())
            self.server = None

    def close(self) -> None:
        self.stop()

        async def _cancel_rest() -> None:  # tasks a stopped server left behind
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        self._call(_cancel_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _mosquitto(conf: Path, log: Path, port: int) -> subprocess.Popen[bytes]:
    binary = find_mosquitto()
    assert binary is not None
    with log.open("ab") as out:
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=out, stderr=out)

    def up() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return True
        except OSError:
            return False

    wait_until(up, timeout_s=15, what="private mosquitto listening")
    return proc


class Connector:
    """The connector in a thread of the test process."""

    def __init__(self, settings: OpcuaSettings, endpoint: str, map_file: Path, url: str, root: str):
        self.stop = threading.Event()
        self.c = OpcuaConnector(
            settings,
            endpoint,
            load_map(map_file),
            url,
            root=root,
            buffer_dir=settings.buffer_dir or Path("."),
        )
        self.thread = threading.Thread(target=self.c.run, args=(self.stop,), name="opcua")
        self.thread.start()

    def metric(self, name: str) -> float:
        return self.c.metrics.value(f"forewarn_opcua_{name}")

    def wait(self, name: str, cond: Callable[[float], bool], what: str) -> None:
        wait_until(lambda: cond(self.metric(name)), timeout_s=30, what=what)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


def _values(db_url: str) -> list[tuple[str, str, float, int]]:
    """(machine, sensor, value, seq) of every stored sensor value."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "select machine_id, key, value::float8, seq from readings, jsonb_each_text(values)"
        ).fetchall()
    return [(m, s, float(v), int(q)) for m, s, v, q in rows]


def test_opcua_connector_server_restart_broker_outage_and_its_own_restart(
    db_url: str, topic_root: str, tmp_path: Path
) -> None:
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed (scripts/ci-packages.sh installs it)")
    m0, m1 = seed(db_url, machines=2)  # s1-pump-000, s1-pump-001 with bearing_temp and flow
    opc_port, mqtt_port = free_port(), free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(mosquitto_config(mqtt_port, tmp_path))
    log = tmp_path / "mosquitto.log"
    url = f"mqtt://127.0.0.1:{mqtt_port}"
    map_file = tmp_path / "map.toml"
    map_file.write_text(
        f"""
site = "s1"
sampling_interval_ms = 50

[[machines]]
id = "{m0}"
[machines.sensors]
bearing_temp = "ns=2;s=Pump0.BearingTemp"
flow = "ns=2;s=Pump0.Flow"

[[machines]]
id = "{m1}"
[machines.sensors]
bearing_temp = "0:Objects/2:Pump1/2:BearingTemp"   # a browse path
flow = "ns=2;s=Pump1.Flow"
"""
    )
    endpoint = f"opc.tcp://127.0.0.1:{opc_port}/forewarn/"
    opc = OpcuaSettings(buffer_dir=tmp_path / "outbox", reconnect_max_s=1.0)
    ingest_settings = load_settings(
        mqtt={"topic_root": topic_root, "keepalive_s": 10},
        ingest={"metrics_port": 0, "flush_interval_s": 0.05},
    )
    machine_of = {"Pump0": m0, "Pump1": m1}
    written: list[tuple[str, str, float]] = []
    server = OpcServer(opc_port).start()
    broker = _mosquitto(conf, log, mqtt_port)
    connector: Connector | None = None

    def one_round() -> None:
        for pump, machine in machine_of.items():
            for var, sensor in SENSORS.items():
                value = 10.0 + len(written) * 0.5
                server.write(pump, var, value)
                written.append((machine, sensor, value))

    def all_stored() -> bool:
        stored = {(m, s, v) for m, s, v, _ in _values(db_url)}
        return set(written) <= stored

    try:
        with running(ingest_settings, db_url, url):
            connector = Connector(opc, endpoint, map_file, url, topic_root)
            connector.wait("server_connected", lambda v: v == 1, "OPC UA session")
            for _ in range(2):
                one_round()
            wait_until(all_stored, what="values published live")

            # broker outage: the connector keeps reading and buffers on disk
            broker.terminate()
            broker.wait(10)
            connector.wait("broker_connected", lambda v: v == 0, "broker loss seen")
            for _ in range(3):
                one_round()
            connector.wait("buffered", lambda v: v == 12, "12 messages buffered on disk")
            broker = _mosquitto(conf, log, mqtt_port)
            wait_until(all_stored, what="the backlog delivered after the outage")
            connector.wait("buffered", lambda v: v == 0, "outbox drained")

            # OPC UA server restart: the connector reconnects with backoff and subscribes again
            server.stop()
            connector.wait("server_connected", lambda v: v == 0, "server loss seen")
            server.start()
            connector.wait("server_reconnects_total", lambda v: v == 2, "OPC UA re-session")
            one_round()
            wait_until(all_stored, what="values after the server restart")

            # connector restart on the same outbox: sequence numbers continue, never repeat
            seq_before = {m: max(q for mm, _, _, q in _values(db_url) if mm == m) for m in (m0, m1)}
            connector.close()
            connector = Connector(opc, endpoint, map_file, url, topic_root)
            connector.wait("server_connected", lambda v: v == 1, "OPC UA session again")
            one_round()
            wait_until(all_stored, what="values after the connector restart")
            assert connector.metric("dropped") == 0
    finally:
        if connector is not None:
            connector.close()
        server.close()
        broker.terminate()
        broker.wait(10)

    stored = _values(db_url)
    for machine, sensor, value in written:  # every value the server published, exactly once
        hits = [s for s in stored if s[:3] == (machine, sensor, value)]
        assert len(hits) == 1, (machine, sensor, value, hits)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("select machine_id, seq from readings").fetchall()
    assert len(rows) == len(set(rows)), "a sequence number was used twice"
    for machine, sensor, value in written[-4:]:  # sent after the restart: numbered above the rest
        (seq,) = [q for m, s, v, q in stored if (m, s, v) == (machine, sensor, value)]
        assert seq > seq_before[machine]


def test_opcua_connector_encrypted_session_with_user_and_password(
    db_url: str, mqtt_url: str, topic_root: str, tmp_path: Path
) -> None:
    m0, _ = seed(db_url, machines=2)
    server_cert = _certificate(tmp_path, "server", SERVER_URI, ExtendedKeyUsageOID.SERVER_AUTH)
    client_cert, client_key = _certificate(
        tmp_path, "client", CLIENT_URI, ExtendedKeyUsageOID.CLIENT_AUTH
    )
    port = free_port()
    map_file = tmp_path / "map.toml"
    map_file.write_text(
        f'site = "s1"\nsampling_interval_ms = 50\n[[machines]]\nid = "{m0}"\n'
        'sensors = { flow = "ns=2;s=Pump0.Flow" }\n'
    )
    endpoint = f"opc.tcp://127.0.0.1:{port}/forewarn/"
    secure = {
        "security_policy": "Basic256Sha256",
        "security_mode": "SignAndEncrypt",
        "certificate": client_cert,
        "private_key": client_key,
        "server_certificate": server_cert[0],
        "username": "operator",
        "reconnect_max_s": 1.0,
    }
    ingest_settings = load_settings(
        mqtt={"topic_root": topic_root, "keepalive_s": 10},
        ingest={"metrics_port": 0, "flush_interval_s": 0.05},
    )
    server = OpcServer(port, secure=server_cert).start()
    intruder = good = None
    try:
        with running(ingest_settings, db_url, mqtt_url):
            # a wrong password gets no session: nothing is read, the connector keeps retrying
            wrong = OpcuaSettings(buffer_dir=tmp_path / "o1", password="guess", **secure)
            intruder = Connector(wrong, endpoint, map_file, mqtt_url, topic_root)
            good = Connector(
                OpcuaSettings(buffer_dir=tmp_path / "o2", password="op-secret", **secure),
                endpoint,
                map_file,
                mqtt_url,
                topic_root,
            )
            good.wait("server_connected", lambda v: v == 1, "encrypted session as operator")
            server.write("Pump0", "Flow", 321.0)
            wait_until(
                lambda: (m0, "flow", 321.0, 0)[:3] in {r[:3] for r in _values(db_url)},
                what="the value read over the encrypted session",
            )
            assert intruder.metric("server_connected") == 0
            assert intruder.metric("server_reconnects_total") == 0
            assert intruder.metric("notifications_total") == 0
    finally:
        for c in (intruder, good):
            if c is not None:
                c.close()
        server.close()


def test_connect_opcua_command_publishes_serves_metrics_and_stops_on_sigterm(
    mqtt_url: str, topic_root: str, tmp_path: Path
) -> None:
    """The console command the compose service runs: settings, map, outbox, metrics, SIGTERM."""
    port, metrics_port = free_port(), free_port()
    map_file = tmp_path / "map.toml"
    map_file.write_text(
        'site = "s1"\nsampling_interval_ms = 50\n[[machines]]\nid = "cli-pump"\n'
        'sensors = { flow = "ns=2;s=Pump0.Flow" }\n'
    )
    got: list[dict[str, Any]] = []
    subscribed = threading.Event()
    parts = urlsplit(mqtt_url)
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"cli-sub-{uuid.uuid4().hex[:8]}")
    sub.on_message = lambda _c, _u, m: got.append(json.loads(m.payload))
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.on_connect = lambda c, *_a: c.subscribe(f"{topic_root}/s1/cli-pump/telemetry", qos=1)
    sub.connect(parts.hostname or "127.0.0.1", parts.port or 1883, 30)
    sub.loop_start()
    server = OpcServer(port).start()
    env = {
        **os.environ,
        "FOREWARN_MQTT__URL": mqtt_url,
        "FOREWARN_MQTT__TOPIC_ROOT": topic_root,
        "FOREWARN_STATE_DIR": str(tmp_path / "state"),
        "FOREWARN_OPCUA__METRICS_PORT": str(metrics_port),
    }
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "forewarn"), "connect", "opcua",
         f"--endpoint=opc.tcp://127.0.0.1:{port}/forewarn/", f"--map={map_file}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert subscribed.wait(10)

        def ready() -> bool:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                with urlopen(f"http://127.0.0.1:{metrics_port}/readyz", timeout=2) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        wait_until(ready, what="the connector's /readyz")
        server.write("Pump0", "Flow", 123.25)
        wait_until(lambda: any(m["values"].get("flow") == 123.25 for m in got), what="telemetry")
        with urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        assert "forewarn_opcua_buffered 0.0" in metrics
        assert (tmp_path / "state" / "opcua" / "outbox.sqlite3").exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        server.close()
        sub.disconnect()
        sub.loop_stop()

"""Security: keys hashed and compared in constant time, SQL-injection probes change nothing, secrets
never reach logs or `forewarn config show`, and the deployment's Mosquitto config (password file +
ACL) refuses anonymous clients and drops messages outside a user's ACL.

The route-by-route role matrix (from an enumeration of app.routes) is tested in test_api_auth.py.
"""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from forewarn.broker import find_mosquitto, free_port
from forewarn.storage import keys as key_store
from tests.fixtures.app import ApiEnv
from tests.integration.ingest_support import wait_until

REPO = Path(__file__).resolve().parents[2]
DB_SECRET = "Db-S3cret-" + uuid.uuid4().hex[:8]
MQTT_SECRET = "Mq-S3cret-" + uuid.uuid4().hex[:8]
INJECTIONS = [
    "' OR '1'='1",
    "s1'; DROP TABLE machines; --",
    "1; DELETE FROM alerts",
    '" OR ""="',
    "1' UNION SELECT key_hash, key_hash FROM api_keys --",
    "%' OR 1=1 --",
    "s1-pump-000' --",
    "\\'; truncate readings; --",
]


# -- API keys --------------------------------------------------------------------------------
def test_keys_are_hashed_and_compared_in_constant_time(api_env: ApiEnv) -> None:
    src = inspect.getsource(key_store.lookup_key)
    assert "hmac.compare_digest" in src and "hash_key(key)" in src
    assert "hashlib.sha256" in inspect.getsource(key_store.hash_key)
    from api import auth

    cache_src = inspect.getsource(auth.KeyCache)
    assert "hash_key(key)" in cache_src  # the cache is keyed by the digest, never the key
    key = api_env.keys["viewer"]
    with api_env.conn() as conn:
        assert key_store.lookup_key(conn, key) is not None
        flipped = key[:-1] + ("A" if key[-1] != "A" else "B")
        assert key_store.lookup_key(conn, flipped) is None
        assert key_store.lookup_key(conn, key_store.hash_key(key)) is None  # the hash is no key
        dump = str(conn.execute("select * from api_keys").fetchall())
    assert all(k not in dump for k in api_env.keys.values())


def _snapshot(env: ApiEnv) -> dict[str, int]:
    with env.conn() as conn:
        tables = [r[0] for r in conn.execute(
            "select table_name from information_schema.tables"
            " where table_schema = current_schema() and table_type = 'BASE TABLE'"
        )]  # fmt: skip
        return {t: conn.execute(f'select count(*) from "{t}"').fetchone()[0] for t in tables}  # type: ignore[index]


def _empty(body: object) -> bool:
    if isinstance(body, list):
        return not body
    assert isinstance(body, dict)
    return all(not v for v in body.values() if isinstance(v, list))


def test_sql_injection_in_filters_ids_and_keys_changes_nothing(api_env: ApiEnv) -> None:
    c, h = api_env.client, api_env.h("admin")
    before = _snapshot(api_env)
    codes: list[int] = []
    for probe in INJECTIONS:
        q = quote(probe, safe="")
        for url in (
            f"/v1/machines?site_id={q}", f"/v1/machines?type_id={q}",
            f"/v1/alerts?machine_id={q}", f"/v1/alerts?site_id={q}", f"/v1/alerts?mode={q}",
            f"/v1/predictions?machine_id={q}", f"/v1/alerts?status={q}",
            f"/v1/alerts/changes?cursor={q}", f"/v1/machines?order={q}",
        ):  # fmt: skip
            r = c.get(url, headers=h)
            codes.append(r.status_code)
            # a literal that matches nothing (3 machines exist: "OR 1=1" would list them) or a 422
            assert r.status_code == 422 or (r.status_code == 200 and _empty(r.json())), (
                url, r.status_code, r.text[:300])  # fmt: skip
        for url in (f"/v1/machines/{q}", f"/v1/machines/{q}/readings", f"/v1/alerts/{q}"):
            r = c.get(url, headers=h)
            codes.append(r.status_code)
            assert r.status_code in (404, 422), (url, r.status_code, r.text[:300])
        for path in (f"/v1/alerts/{q}/acknowledge", f"/v1/models/{q}/promote", f"/v1/keys/{q}"):
            method = "DELETE" if path.startswith("/v1/keys/") else "POST"
            r = c.request(method, path, headers=h, json={"reason": probe, "version": probe})
            codes.append(r.status_code)
            assert 400 <= r.status_code < 500, (method, path, r.status_code, r.text[:300])
        r = c.get("/v1/machines", headers={"X-API-Key": probe})
        assert r.status_code == 401
    assert not [code for code in codes if code >= 500]
    assert _snapshot(api_env) == before


# -- secrets in output -----------------------------------------------------------------------
def _secret_env(db_url: str, mqtt_url: str, root: str) -> dict[str, str]:
    parts = urlsplit(db_url)
    netloc = f"root:{DB_SECRET}@{parts.hostname}:{parts.port or 5432}"
    return os.environ | {
        "FOREWARN_DB__URL": parts._replace(netloc=netloc).geturl(),
        "FOREWARN_MQTT__URL": mqtt_url,
        "FOREWARN_MQTT__USERNAME": "forewarn-ingest",
        "FOREWARN_MQTT__PASSWORD": MQTT_SECRET,
        "FOREWARN_MQTT__TOPIC_ROOT": root,
        "FOREWARN_MQTT__CLIENT_ID": f"secret-{uuid.uuid4().hex[:8]}",
        "FOREWARN_INGEST__METRICS_PORT": "0",
        "FOREWARN_LOG_LEVEL": "DEBUG",
    }


def test_secrets_never_appear_in_config_show_or_logs(
    db_url: str, mqtt_url: str, topic_root: str, tmp_path: Path
) -> None:
    env = _secret_env(db_url, mqtt_url, topic_root)
    forewarn = [sys.executable, "-m", "forewarn"]
    outputs = []
    shown = subprocess.run([*forewarn, "config", "show"], env=env, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "***" in shown.stdout
    outputs.append(shown.stdout + shown.stderr)
    migrated = subprocess.run([*forewarn, "db", "migrate"], env=env, capture_output=True, text=True)
    assert migrated.returncode == 0, migrated.stderr
    outputs.append(migrated.stdout + migrated.stderr)
    # an unreachable database: the error message names the server, never the password
    bad = env | {"FOREWARN_DB__URL": f"postgresql://root:{DB_SECRET}@127.0.0.1:{free_port()}/x"}
    failed = subprocess.run([*forewarn, "db", "migrate"], env=bad, capture_output=True, text=True)
    assert failed.returncode != 0
    outputs.append(failed.stdout + failed.stderr)
    log = tmp_path / "ingest.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*forewarn, "ingest"], env=env, stdout=out, stderr=out)
    try:
        wait_until(lambda: "subscribed to" in log.read_text(), 30, "ingest connected")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    outputs.append(log.read_text())
    for text in outputs:
        assert DB_SECRET not in text and MQTT_SECRET not in text, text[-2000:]


# -- MQTT: the deployment's password file and ACL --------------------------------------------
USERS = {"forewarn-sim": "sim-pw", "forewarn-ingest": "ingest-pw", "forewarn-api": "api-pw",
         "plant-a": "plant-a-pw", "plant-b": "plant-b-pw"}  # fmt: skip


@pytest.fixture(scope="module")
def secured_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """deploy/mosquitto's config on a spare loopback port, with a generated password file."""
    binary = find_mosquitto()
    if binary is None or not Path("/usr/bin/mosquitto_passwd").exists():
        pytest.skip("mosquitto and mosquitto_passwd are needed")
    d = tmp_path_factory.mktemp("secure-mqtt")
    passwd = d / "passwd"
    passwd.touch(mode=0o600)
    for user, pw in USERS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, pw], check=True)
    port = free_port()
    conf = (REPO / "deploy/mosquitto/mosquitto.conf").read_text()
    conf = (
        conf.replace("listener 1883", f"listener {port} 127.0.0.1")
        .replace("/mosquitto/config/passwd", str(passwd))
        .replace("/mosquitto/config/acl", str(REPO / "deploy/mosquitto/acl"))
        .replace("/mosquitto/data/", f"{d}/")
    )
    assert f"listener {port}" in conf and str(passwd) in conf and "acl_file" in conf
    (d / "mosquitto.conf").write_text(conf + f"\nuser {os.environ.get('USER', 'root')}\n")
    with (d / "broker.log").open("wb") as out:
        proc = subprocess.Popen([binary, "-c", str(d / "mosquitto.conf")], stdout=out, stderr=out)
    try:
        import socket

        def up() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                return True
            except OSError:
                return False

        wait_until(up, 15, "secured mosquitto listening")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


class Conn:
    """A paho client that records its CONNACK reason and the messages it receives."""

    def __init__(self, port: int, user: str | None, password: str | None = None) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sec-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)  # fmt: skip
        if user is not None:
            self.client.username_pw_set(user, password if password is not None else USERS[user])
        self.connected = threading.Event()
        self.reason: str | None = None
        self.received: list[tuple[str, bytes]] = []
        self.granted: list[int] = []
        self.pubacks: dict[int, int] = {}  # mid -> PUBACK reason code (135 = not authorized)
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.pubacks.__setitem__(mid, rc.value)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, m: self.received.append((m.topic, m.payload))
        self.client.on_subscribe = lambda _c, _u, _m, rcs, _p: self.granted.extend(
            r.value for r in rcs
        )
        self.client.connect_async("127.0.0.1", port, 30)
        self.client.loop_start()
        assert self.connected.wait(10), "no CONNACK"

    def _on_connect(self, _c: object, _u: object, _f: object, rc: object, _p: object) -> None:
        self.reason = str(rc)
        self.ok = not rc.is_failure  # type: ignore[attr-defined]
        self.connected.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_anonymous_and_wrong_password_are_refused(secured_broker: int) -> None:
    for user, pw in ((None, None), ("forewarn-sim", "wrong"), ("nobody", "x")):
        c = Conn(secured_broker, user, pw)
        assert not c.ok, (user, c.reason)
        c.client.loop_stop()
    good = Conn(secured_broker, "forewarn-sim")
    assert good.ok
    good.close()


def test_publishing_or_subscribing_outside_the_acl_gets_nothing_through(
    secured_broker: int,
) -> None:
    ingest = Conn(secured_broker, "forewarn-ingest")
    sim = Conn(secured_broker, "forewarn-sim")
    ingest.client.subscribe([("forewarn/v1/+/+/telemetry", 1), ("forewarn/v1/+/+/event", 1)])
    sim.client.subscribe("forewarn/v1/+/+/command", 1)
    snoop = Conn(secured_broker, "plant-a")  # a gateway trying to read another site's data
    snoop.client.subscribe([("forewarn/v1/plant-b/+/command", 1), ("forewarn/v1/+/+/telemetry", 1)])
    wait_until(lambda: len(ingest.granted) == 2 and len(sim.granted) == 1 and len(snoop.granted) == 2,
               10, "SUBACKs")  # fmt: skip
    # Mosquitto 2.0 grants a wildcard SUBSCRIBE and applies the read ACL to every message it
    # would deliver: the proof is that nothing arrives (checked below)
    plant_a = Conn(secured_broker, "plant-a")
    api = Conn(secured_broker, "forewarn-api")
    denied = [
        (plant_a, "forewarn/v1/plant-b/m1/telemetry"),  # a gateway writing for another site
        (plant_a, "forewarn/v1/plant-b/m1/event"),
        (plant_a, "forewarn/v1/plant-a/m1/command"),  # a gateway issuing commands
        (ingest, "forewarn/v1/plant-a/m1/telemetry"),  # ingest may only subscribe
        (sim, "forewarn/v1/plant-a/m1/command"),  # the simulator may not issue commands
        (api, "forewarn/v1/plant-a/m1/telemetry"),  # the API may not forge telemetry
        # no pattern lines: a service user has no site named after itself
        (api, "forewarn/v1/forewarn-api/m1/telemetry"),
        (ingest, "forewarn/v1/forewarn-ingest/m1/telemetry"),
        (sim, "forewarn/v1/forewarn-sim/m1/command"),
    ]
    refused = []
    for client, topic in denied:
        info = client.client.publish(topic, b"forged", qos=1)
        info.wait_for_publish(10)
        refused.append((client, info.mid))
    allowed = [
        (plant_a, "forewarn/v1/plant-a/m1/telemetry"),
        (sim, "forewarn/v1/plant-b/m2/event"),
        (api, "forewarn/v1/plant-b/m2/command"),
    ]
    for client, topic in allowed:
        client.client.publish(topic, b"ok", qos=1).wait_for_publish(10)
    wait_until(lambda: len(ingest.received) >= 2 and len(sim.received) >= 1, 10, "allowed messages")
    # the broker said so for each forged message (MQTT 5 PUBACK reason 135, not authorized), so
    # none was routed: no need to wait and see
    wait_until(lambda: all(mid in c.pubacks for c, mid in refused), 10, "PUBACKs")
    assert [c.pubacks[mid] for c, mid in refused] == [135] * len(refused)
    got = ingest.received + sim.received + snoop.received
    assert sorted(t for t, _ in got) == sorted(t for _, t in allowed)
    assert all(p == b"ok" for _, p in got)
    assert not snoop.received
    for c in (ingest, sim, snoop, plant_a, api):
        c.close()

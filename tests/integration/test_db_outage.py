"""The database goes away, then comes back: ingest stops acknowledging, holds bounded memory and
resumes without loss; the API answers 503 with Retry-After (never 500) while it is down.

Private servers only (embedded PostgreSQL and a Mosquitto with unlimited queues under tmp_path), so
stopping the database disturbs nobody else.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from forewarn.broker import free_port, local_broker
from forewarn.settings import load_settings
from forewarn.storage.keys import create_key
from forewarn.storage.migrate import migrate
from forewarn.storage.server import embedded_postgres
from tests.integration.ingest_support import (
    Publisher,
    good_messages,
    seed,
    stored_keys,
    wait_until,
)
from tools.chaos import pg_ctl, stop_postgres

pytestmark = pytest.mark.timeout(240)
logger = logging.getLogger(__name__)

QUEUE_MAX, BATCH = 200, 50
BEFORE, DURING = 300, 20_000  # messages published before and while the database is down


def _count(db_url: str) -> int:
    try:
        with psycopg.connect(db_url, connect_timeout=2) as conn:
            row = conn.execute("select count(*) from readings").fetchone()
    except psycopg.OperationalError:
        return -1
    return int(row[0]) if row else 0


def _metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for m in re.finditer(r"^(forewarn_ingest_\w+)(\{[^}]*\})? ([0-9.e+-]+)$", text, re.M):
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    with (
        embedded_postgres(tmp_path, database="outage") as db_url,
        local_broker(tmp_path, kind="mosquitto") as mqtt_url,
    ):
        with psycopg.connect(db_url) as conn:
            migrate(conn)
        try:
            yield db_url, mqtt_url, tmp_path / "pg"
        finally:
            stop_postgres(tmp_path / "pg")  # the wheel loses track of a server pg_ctl restarted


def test_database_outage_ingest_holds_back_and_api_answers_503(
    stack: tuple[str, str, Path], tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    db_url, mqtt_url, pgdata = stack
    root = f"outage-{uuid.uuid4().hex[:8]}/v1"
    machines = seed(db_url, machines=10)
    with psycopg.connect(db_url) as conn:
        key = create_key(conn, name="outage-viewer", role="viewer")
    msgs = good_messages(root, machines, BEFORE + DURING)
    metrics_port = free_port()
    log = tmp_path / "ingest.log"
    env = os.environ | {
        "FOREWARN_DB__URL": db_url,
        "FOREWARN_MQTT__URL": mqtt_url,
        "FOREWARN_MQTT__TOPIC_ROOT": root,
        "FOREWARN_MQTT__CLIENT_ID": f"outage-{uuid.uuid4().hex[:8]}",
        "FOREWARN_INGEST__METRICS_PORT": str(metrics_port),
        "FOREWARN_INGEST__QUEUE_MAX": str(QUEUE_MAX),
        "FOREWARN_INGEST__BATCH_SIZE": str(BATCH),
    }
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "forewarn", "ingest"], env=env,
                                stdout=out, stderr=out)  # fmt: skip
    pub = Publisher(mqtt_url)
    app = create_app(load_settings(db={"url": db_url, "connect_timeout_s": 2}))
    try:
        wait_until(lambda: "subscribed to" in log.read_text(), 30, "ingest connected")
        pub.publish([(t, p) for t, p, _ in msgs[:BEFORE]])
        wait_until(lambda: _count(db_url) >= BEFORE, 30, "first messages stored")
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.get("/v1/ready").status_code == 200
            assert client.get("/v1/machines", headers={"X-API-Key": key}).status_code == 200

            pg_ctl(pgdata, "stop")
            rss_before = psutil.Process(proc.pid).memory_info().rss
            received_before = _metrics(metrics_port)[
                'forewarn_ingest_received_total{kind="telemetry"}'
            ]
            pub.publish([(t, p) for t, p, _ in msgs[BEFORE:]])  # the broker acks the publisher
            wait_until(lambda: _metrics(metrics_port)["forewarn_ingest_db_errors_total"] >= 2,
                       30, "ingest retrying")  # fmt: skip
            m = _metrics(metrics_port)
            # intake blocks once the bounded queue is full: the broker holds the other ~19,700
            taken = m['forewarn_ingest_received_total{kind="telemetry"}'] - received_before
            assert taken <= QUEUE_MAX + 2 * BATCH, taken
            assert m["forewarn_ingest_queue_depth"] <= QUEUE_MAX
            assert m["forewarn_ingest_db_ok"] == 0
            rss_growth_mb = (psutil.Process(proc.pid).memory_info().rss - rss_before) / 2**20
            assert rss_growth_mb < 30, rss_growth_mb
            logger.info("outage: ingest took %d of %d messages, RSS %+.1f MiB, queue depth %d",
                     taken, DURING, rss_growth_mb, m["forewarn_ingest_queue_depth"])  # fmt: skip
            assert proc.poll() is None, "ingest must survive the outage"

            statuses = []
            for path, headers in (("/v1/ready", {}), ("/v1/machines", {"X-API-Key": key}),
                                  ("/v1/alerts", {"X-API-Key": key})):  # fmt: skip
                r = client.get(path, headers=headers)
                statuses.append(r.status_code)
                assert r.status_code == 503, (path, r.status_code, r.text)
                assert int(r.headers["Retry-After"]) > 0
            assert 500 not in statuses

            pg_ctl(pgdata, "start")
            wait_until(lambda: _count(db_url) >= BEFORE + DURING, 120, "ingest resumed")
            wait_until(lambda: client.get("/v1/ready").status_code == 200, 30, "API ready again")
            # the read pool reconnects with its own backoff: a client honouring Retry-After gets in
            wait_until(
                lambda: client.get("/v1/machines", headers={"X-API-Key": key}).status_code == 200,
                60, "API data routes back")  # fmt: skip
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-2000:]
    finally:
        pub.close()
        if proc.poll() is None:
            proc.kill()
    keys = stored_keys(db_url)
    assert len(keys) == len(msgs) and set(keys) == {k for *_, k in msgs}
    text = log.read_text()
    assert "database write failed" in text and "Traceback" not in text


def _read_only(db_url: str, on: bool) -> None:
    """Make the whole (private) server read-only, or writable again; live sessions follow."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        if on:
            conn.execute("alter system set default_transaction_read_only = on")
        else:
            conn.execute("set default_transaction_read_only = off")
            conn.execute("alter system reset default_transaction_read_only")
        conn.execute("select pg_reload_conf()")


def test_read_only_database_ingest_holds_back_then_resumes(
    stack: tuple[str, str, Path], tmp_path: Path
) -> None:
    db_url, mqtt_url, _ = stack
    root = f"readonly-{uuid.uuid4().hex[:8]}/v1"
    machines = seed(db_url, machines=10)
    msgs = good_messages(root, machines, 2300)
    metrics_port = free_port()
    log = tmp_path / "ingest.log"
    env = os.environ | {
        "FOREWARN_DB__URL": db_url,
        "FOREWARN_MQTT__URL": mqtt_url,
        "FOREWARN_MQTT__TOPIC_ROOT": root,
        "FOREWARN_MQTT__CLIENT_ID": f"readonly-{uuid.uuid4().hex[:8]}",
        "FOREWARN_INGEST__METRICS_PORT": str(metrics_port),
        "FOREWARN_INGEST__QUEUE_MAX": str(QUEUE_MAX),
        "FOREWARN_INGEST__BATCH_SIZE": str(BATCH),
    }
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "forewarn", "ingest"], env=env,
                                stdout=out, stderr=out)  # fmt: skip
    pub = Publisher(mqtt_url)
    try:
        wait_until(lambda: "subscribed to" in log.read_text(), 30, "ingest connected")
        pub.publish([(t, p) for t, p, _ in msgs[:300]])
        wait_until(lambda: _count(db_url) >= 300, 30, "first messages stored")
        _read_only(db_url, True)
        pub.publish([(t, p) for t, p, _ in msgs[300:]])
        wait_until(lambda: _metrics(metrics_port)["forewarn_ingest_db_errors_total"] >= 2,
                   30, "ingest retrying")  # fmt: skip
        assert _count(db_url) == 300, _count(db_url)
        assert proc.poll() is None, log.read_text()[-2000:]
        assert "read-only transaction" in log.read_text(), log.read_text()[-2000:]
        _read_only(db_url, False)
        wait_until(lambda: _count(db_url) >= len(msgs), 60, "ingest resumed")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-2000:]
    finally:
        pub.close()
        if proc.poll() is None:
            proc.kill()
    keys = stored_keys(db_url)
    assert len(keys) == len(msgs) and set(keys) == {k for *_, k in msgs}


def test_api_write_on_read_only_database_is_503(stack: tuple[str, str, Path]) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    db_url, _, _ = stack
    with psycopg.connect(db_url) as conn:
        admin = create_key(conn, name="ro-admin", role="admin")
    app = create_app(load_settings(db={"url": db_url, "connect_timeout_s": 2}))
    with TestClient(app, raise_server_exceptions=False) as client:
        h = {"X-API-Key": admin}
        assert client.get("/v1/machines", headers=h).status_code == 200  # key cached
        _read_only(db_url, True)
        try:
            assert client.get("/v1/machines", headers=h).status_code == 200  # reads still work
            r = client.post("/v1/keys", json={"name": "new", "role": "viewer"}, headers=h)
        finally:
            _read_only(db_url, False)
    assert r.status_code == 503 and "Retry-After" in r.headers, (r.status_code, r.text)

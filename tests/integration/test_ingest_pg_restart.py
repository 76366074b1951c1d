"""A real PostgreSQL restart during ingest loses nothing (on a private embedded server, so the
shared server and other sessions' tests are untouched)."""

from __future__ import annotations

import warnings
from pathlib import Path

import psycopg
import pytest

from forewarn.storage.migrate import migrate
from forewarn.storage.server import embedded_postgres
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


def _restart(pgdata: Path) -> None:
    """``pg_ctl restart -m fast``: every connection is cut, the server comes back on the same socket."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server
        from embedded_postgres._commands import pg_ctl

    server = get_server(pgdata, cleanup_mode=None)
    pg_ctl(["-w", "-m", "fast", "-l", str(server.log), "restart"], pgdata=server.pgdata,
           user=server.system_user, timeout=60)  # fmt: skip


def _postmaster_start(db_url: str) -> object:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select pg_postmaster_start_time()").fetchone()
    assert row is not None
    return row[0]


def test_postgresql_restart_during_ingest_loses_nothing(
    tmp_path: Path, mqtt_url: str, topic_root: str
) -> None:
    with embedded_postgres(tmp_path, database="ingest_restart") as db_url:
        with psycopg.connect(db_url) as conn:
            migrate(conn)
        machines = seed(db_url, machines=5)
        first = good_messages(topic_root, machines, 400)
        after = good_messages(topic_root, machines, 400, first_seq=1000)
        pub = Publisher(mqtt_url)
        with running(worker_settings(topic_root), db_url, mqtt_url) as worker:
            pub.publish([(t, p) for t, p, _ in first[:200]])
            wait_until(lambda: count(db_url, "readings") >= 100, what="ingest under way")
            pub.publish([(t, p) for t, p, _ in first[200:]])
            started = _postmaster_start(db_url)
            _restart(tmp_path / "pg")  # mid-stream: a batch may be in flight when the server goes
            assert _postmaster_start(db_url) > started
            pub.publish([(t, p) for t, p, _ in after])
            wait_until(lambda: count(db_url, "readings") >= len(first) + len(after), 60, "resume")
        pub.close()
        keys = stored_keys(db_url)
        assert len(keys) == len(set(keys)) and set(keys) == {k for *_, k in first + after}
        assert sum(c.written.readings for c in worker.commits) == len(keys)

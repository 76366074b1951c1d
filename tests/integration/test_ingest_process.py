"""`forewarn ingest` as a process: kill -9 mid-stream then restart stores exactly the published set;
SIGTERM drains (flush, commit, ack) and exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from tests.integration.ingest_support import (
    Publisher,
    count,
    good_messages,
    seed,
    stored_keys,
    wait_until,
)

pytestmark = pytest.mark.timeout(180)


def _start(
    db_url: str, mqtt_url: str, root: str, client_id: str, log: Path
) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "FOREWARN_DB__URL": db_url,
        "FOREWARN_MQTT__URL": mqtt_url,
        "FOREWARN_MQTT__TOPIC_ROOT": root,
        "FOREWARN_MQTT__CLIENT_ID": client_id,
        "FOREWARN_INGEST__METRICS_PORT": "0",
        "FOREWARN_INGEST__BATCH_SIZE": "50",
        "FOREWARN_INGEST__FLUSH_INTERVAL_S": "0.05",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "forewarn", "ingest"], env=env, stdout=out, stderr=out
        )


def test_kill_9_mid_stream_then_restart_stores_exactly_the_published_set(
    db_url: str, mqtt_url: str, topic_root: str, tmp_path: Path
) -> None:
    machines = seed(db_url, machines=8)
    client_id = f"test-ingest-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "ingest.log"
    # at most ~900 messages wait for the dead worker: under Debian's max_queued_messages 1000
    msgs = good_messages(topic_root, machines, 1200)
    proc = _start(db_url, mqtt_url, topic_root, client_id, log)
    wait_until(lambda: "subscribed to" in log.read_text(), 30, "ingest connected")
    pub = Publisher(mqtt_url)
    stream = threading.Thread(target=pub.publish, args=([(t, p) for t, p, _ in msgs], 0.001))
    stream.start()
    wait_until(lambda: count(db_url, "readings") >= 300, 60, "ingest under way")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    killed_at = count(db_url, "readings")
    stream.join(60)
    pub.close()
    assert killed_at < len(msgs), "the kill must land mid-stream"

    proc = _start(db_url, mqtt_url, topic_root, client_id, log)
    try:
        wait_until(lambda: count(db_url, "readings") >= len(msgs), 60, "redelivery after restart")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    keys = stored_keys(db_url)
    assert len(keys) == len(msgs) and set(keys) == {k for *_, k in msgs}
    assert "Traceback" not in log.read_text()

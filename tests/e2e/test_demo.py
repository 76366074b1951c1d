"""The headless demo end to end: simulator -> broker -> ingest -> models -> alerts -> API.

Once on the machine's PostgreSQL and Mosquitto, once on the embedded defaults (embedded
PostgreSQL and a broker the demo starts itself). Each run must lose nothing, raise an alert a
maintenance key can poll, and leave no process behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psutil

DURATION_S = "45"
FAST_BOOTSTRAP = ["--bootstrap-days", "30", "--bootstrap-machines", "30"]


def _leftovers(state_dir: Path) -> list[str]:
    """Processes that still belong to this demo (by environment or command line)."""
    mine = str(state_dir)
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
            env = proc.environ()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if mine in cmd or env.get("FOREWARN_STATE_DIR") == mine:
            found.append(f"{proc.info['pid']}: {cmd[:120]}")
    return found


def _run_demo(state_dir: Path, env: dict[str, str]) -> dict[str, int]:
    argv = [
        sys.executable,
        "-m",
        "forewarn",
        "demo",
        "--headless",
        "--machines",
        "30",
        "--duration",
        DURATION_S,
        "--json",
        *FAST_BOOTSTRAP,
    ]
    done = subprocess.run(
        argv,
        env={**os.environ, **env, "FOREWARN_STATE_DIR": str(state_dir)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _check(result: dict[str, int], state_dir: Path) -> None:
    assert set(result) >= {
        "published",
        "stored",
        "lost",
        "dead_lettered",
        "predictions",
        "alerts",
        "seconds",
    }
    assert result["published"] > 5000
    assert result["lost"] == 0 and result["stored"] == result["published"]
    assert result["predictions"] > 0 and result["machines_scored"] == 30
    assert result["alerts"] >= 1
    assert result["api_alerts"] >= 1  # the maintenance side sees them through the API
    assert _leftovers(state_dir) == []


def test_headless_demo_on_machine_services(tmp_path: Path, db_url: str, mqtt_url: str) -> None:
    run = uuid.uuid4().hex[:8]
    env = {
        "FOREWARN_DB__URL": db_url,
        "FOREWARN_MQTT__URL": mqtt_url,
        # the shared broker: a client id and topic root of this test's own
        "FOREWARN_MQTT__CLIENT_ID": f"forewarn-ingest-{run}",
        "FOREWARN_MQTT__TOPIC_ROOT": f"forewarn-e2e-{run}/v1",
    }
    _check(_run_demo(tmp_path / "state", env), tmp_path / "state")


def test_headless_demo_on_embedded_defaults(tmp_path: Path) -> None:
    env = {k: "" for k in ("FOREWARN_DB__URL", "FOREWARN_MQTT__URL")}
    state = tmp_path / "state"
    _check(_run_demo(state, env), state)
    assert (state / "pg" / "PG_VERSION").exists()  # the embedded server really ran

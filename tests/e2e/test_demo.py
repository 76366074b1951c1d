"""The headless demo end to end: simulator -> broker -> ingest -> models -> alerts -> API -> crew
-> maintenance orders -> simulator, through restarts.

Once on the machine's PostgreSQL and Mosquitto, once on the embedded defaults (embedded
PostgreSQL and a broker the demo starts itself). Each backend runs the demo three times in one
state directory (a first run with ingest killed by its pid file, then two resumed runs), with the
simulated crew acting on alerts through the API. Every run must lose nothing, answer every
maintenance order it sent, raise no alert after the failure it is about, leave no open alert on a
failed machine, keep every machine's clock monotonic, and leave no process behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import psycopg

FIRST_S, RESUMED_S = "45", "25"
FAST_BOOTSTRAP = ["--bootstrap-days", "30", "--bootstrap-machines", "30"]
READINGS_BEFORE_KILL = 2000


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


def _argv(duration: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "forewarn",
        "demo",
        "--headless",
        "--crew",
        "--machines",
        "30",
        "--duration",
        duration,
        "--json",
        *FAST_BOOTSTRAP,
    ]


def _wait_for(predicate: object, timeout_s: float, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"the demo ended before the kill:\n{err[-3000:]}")
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def _readings(db_url: str) -> int:
    try:
        with psycopg.connect(db_url, autocommit=True, connect_timeout=2) as conn:
            row = conn.execute("select count(*) from readings").fetchone()
    except psycopg.Error:
        return 0
    return 0 if row is None else int(row[0])


def _run_demo(
    state_dir: Path, env: dict[str, str], duration: str, *, kill_ingest_on: str | None = None
) -> dict[str, object]:
    """One headless demo run; with ``kill_ingest_on`` (a database URL), ingest is killed with
    SIGKILL by its pid file once that database holds readings."""
    proc = subprocess.Popen(
        _argv(duration),
        env={**os.environ, **env, "FOREWARN_STATE_DIR": str(state_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if kill_ingest_on is not None:
            run = state_dir / "run"
            _wait_for(lambda: (run / "simulator.pid").exists(), 600, proc)
            _wait_for(lambda: _readings(kill_ingest_on) >= READINGS_BEFORE_KILL, 120, proc)
            pid = int((run / "ingest.pid").read_text())
            os.kill(pid, signal.SIGKILL)
            # the supervisor writes the restarted ingest's pid
            _wait_for(lambda: int((run / "ingest.pid").read_text() or 0) != pid, 60, proc)
        out, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def _check(result: dict[str, object], state_dir: Path) -> None:
    assert result["published"] > 3000  # type: ignore[operator]
    assert result["lost"] == 0 and result["stored"] == result["published"]
    assert result["dead_lettered"] == 0 and result["problems"] == []
    # scoring runs every few seconds beside everything else on two cores: some machines scored
    assert result["machines_scored"] > 0  # type: ignore[operator]
    assert result["orders_obeyed"] == result["orders_sent"]
    assert result["alerts_after_failure"] == 0
    assert result["open_alerts_on_failed_machines"] == 0
    assert result["clock_monotonic"] is True
    assert _leftovers(state_dir) == []


def _loop(state: Path, env: dict[str, str], db_url: str) -> None:
    first = _run_demo(state, env, FIRST_S, kill_ingest_on=db_url)
    _check(first, state)
    assert first["resumed"] is False and first["restarts"] >= 1  # type: ignore[operator]
    assert first["alerts"] >= 1 and first["api_alerts"] >= 1  # type: ignore[operator]
    runs = [first]
    for _ in range(2):  # stopped and resumed, twice
        again = _run_demo(state, env, RESUMED_S)
        _check(again, state)
        assert again["resumed"] is True and again["restarts"] == 0
        # the plant clock continues where the previous run stopped: no repeat, no gap
        assert again["clock"][0] == runs[-1]["clock"][1]  # type: ignore[index]
        runs.append(again)
    # over the three runs the crew acted and the plant obeyed
    assert sum(int(r["orders_sent"]) for r in runs) > 0  # type: ignore[call-overload]
    assert sum(int(r["ledger_entries"]) for r in runs) > 0  # type: ignore[call-overload]


def test_headless_demo_loop_on_machine_services(tmp_path: Path, db_url: str, mqtt_url: str) -> None:
    run = uuid.uuid4().hex[:8]
    env = {
        "FOREWARN_DB__URL": db_url,
        "FOREWARN_MQTT__URL": mqtt_url,
        # the shared broker: a client id and topic root of this test's own
        "FOREWARN_MQTT__CLIENT_ID": f"forewarn-ingest-{run}",
        "FOREWARN_MQTT__TOPIC_ROOT": f"forewarn-e2e-{run}/v1",
    }
    _loop(tmp_path / "state", env, db_url)


def test_headless_demo_loop_on_embedded_defaults() -> None:
    env = {k: "" for k in ("FOREWARN_DB__URL", "FOREWARN_MQTT__URL")}
    # Not under pytest's tmp_path: every pytest session that starts on this machine resets
    # /tmp/pytest-of-<user> to mode 0700, which cuts the embedded server's own (non-root) user
    # off its data directory in the middle of a run (PANIC: pg_control: Permission denied).
    root = Path(tempfile.mkdtemp(prefix="forewarn-e2e-loop-"))
    try:
        state = root / "state"
        embedded = f"postgresql://postgres:@/forewarn?host={state / 'pg'}"
        _loop(state, env, embedded)
        assert (state / "pg" / "PG_VERSION").exists()  # the embedded server really ran
    finally:
        shutil.rmtree(root, ignore_errors=True)

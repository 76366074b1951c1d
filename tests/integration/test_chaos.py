"""`forewarn chaos`: ingest SIGKILLed, PostgreSQL and Mosquitto restarted mid-stream, nothing lost.

Everything runs on private servers (embedded PostgreSQL, Mosquitto on a free port) under a temp dir.
The short run is in the default suite; the 50,000-message run with 5 kills is marked `soak`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tools.chaos import ChaosOptions, fault_plan

KEYS = {"published", "stored", "lost", "duplicates", "ingest_kills", "db_restarts",
        "broker_restarts", "seconds"}  # fmt: skip


def _chaos(messages: int, kills: int, timeout_s: float) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "forewarn", "chaos", "--messages", str(messages),
         "--kills", str(kills), "--json"],
        capture_output=True, text=True, timeout=timeout_s,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    assert "Traceback" not in out.stderr
    return result


def test_fault_plan_is_seeded_and_complete() -> None:
    plan = fault_plan(ChaosOptions(kills=3, seed=7))
    assert plan == fault_plan(ChaosOptions(kills=3, seed=7))
    assert sorted(f for _, f in plan) == ["broker", "db", "kill", "kill", "kill"]
    assert all(0.05 <= x <= 0.9 for x, _ in plan)


@pytest.mark.timeout(240)
def test_short_chaos_run_loses_nothing() -> None:
    r = _chaos(3000, 2, 200)
    assert r.keys() >= KEYS
    assert (r["published"], r["stored"], r["lost"], r["duplicates"]) == (3000, 3000, 0, 0)
    assert (r["ingest_kills"], r["db_restarts"], r["broker_restarts"]) == (2, 1, 1)
    assert r["dead_letters"] == 0 and r["unexpected"] == 0
    assert r["faults_during_stream"] is True


@pytest.mark.soak
@pytest.mark.timeout(1200)
def test_long_chaos_run_loses_nothing() -> None:
    r = _chaos(50_000, 5, 1100)
    assert (r["published"], r["stored"], r["lost"], r["duplicates"]) == (50_000, 50_000, 0, 0)
    assert (r["ingest_kills"], r["db_restarts"], r["broker_restarts"]) == (5, 1, 1)
    assert r["faults_during_stream"] is True

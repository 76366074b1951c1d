"""`forewarn chaos`: ingest SIGKILLed, PostgreSQL and Mosquitto restarted mid-stream, nothing lost.

Everything runs on private servers (embedded PostgreSQL, Mosquitto on a free port) under a temp dir.
The 20,000-message run with 3 kills, one PostgreSQL and one broker restart is in the default suite
(`make test`), paced at 400 msg/s so that every fault lands while the stream runs even on a loaded
machine; the 50,000-message run with 5 kills is marked `soak`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tools.chaos import ChaosOptions, fault_plan

KEYS = {"published", "stored", "lost", "duplicates", "ingest_kills", "db_restarts",
        "broker_restarts", "seconds"}  # fmt: skip


def _chaos(
    messages: int, kills: int, timeout_s: float, rate: float | None = None
) -> dict[str, object]:
    extra = ["--rate", str(rate)] if rate else []
    out = subprocess.run(
        [sys.executable, "-m", "forewarn", "chaos", "--messages", str(messages),
         "--kills", str(kills), "--json", *extra],
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


@pytest.mark.timeout(420)
def test_chaos_run_of_20000_messages_loses_nothing() -> None:
    r = _chaos(20_000, 3, 400, rate=400)
    assert r.keys() >= KEYS
    assert (r["published"], r["stored"], r["lost"], r["duplicates"]) == (20_000, 20_000, 0, 0)
    assert (r["ingest_kills"], r["db_restarts"], r["broker_restarts"]) == (3, 1, 1)
    assert r["dead_letters"] == 0 and r["unexpected"] == 0
    assert r["faults_during_stream"] is True


@pytest.mark.soak
@pytest.mark.timeout(1200)
def test_long_chaos_run_loses_nothing() -> None:
    r = _chaos(50_000, 5, 1100)
    assert (r["published"], r["stored"], r["lost"], r["duplicates"]) == (50_000, 50_000, 0, 0)
    assert (r["ingest_kills"], r["db_restarts"], r["broker_restarts"]) == (5, 1, 1)
    assert r["faults_during_stream"] is True

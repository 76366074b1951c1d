"""Scoring and alerts scale out: three `forewarn score` workers and two `forewarn alerts run`
workers (real processes) share a fleet through partition leases; one of each is SIGKILLed mid-run.

The plant is written straight into the database (one reading per machine per plant second, four
plant seconds per wall second) so the test controls exactly which readings exist. Checks: every
reading of every machine scored exactly once (the pass log's seq ranges tile each machine's
readings), the killed worker's partitions taken over, one alert per injected fault and none for
healthy machines (none lost, none doubled).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest

from forewarn.contract import Telemetry
from forewarn.storage import leases
from forewarn.storage.assets import upsert_registry
from forewarn.storage.readings import insert_readings
from forewarn.supervisor import forewarn_command
from tests.factories import PUMP_SENSORS, make_registry

pytestmark = [pytest.mark.scaleout, pytest.mark.timeout(600)]

MACHINES = 40
PARTITIONS = 12
LEASE_S = 3.0
CADENCE_S = 0.5
PLANT_S_PER_WALL_S = 4
FAULTY = {"s1-pump-003", "s1-pump-017", "s1-pump-021", "s1-pump-030", "s1-pump-038"}


def _wait(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


@pytest.fixture
def workers(db_url: str, tmp_path: Path) -> Iterator[dict[str, list[subprocess.Popen[bytes]]]]:
    env = {
        **os.environ,
        "FOREWARN_DB__URL": db_url,
        "FOREWARN_MODELS__PARTITIONS": str(PARTITIONS),
        "FOREWARN_MODELS__LEASE_S": str(LEASE_S),
        "FOREWARN_MODELS__STREAM_CADENCE_S": str(CADENCE_S),
        "FOREWARN_MODELS__SCORE_CADENCE_S": "3600",
        "FOREWARN_LOG_LEVEL": "INFO",
    }
    procs: dict[str, list[subprocess.Popen[bytes]]] = {"score": [], "alerts": []}
    logs = []
    for kind, n, argv in (
        ("score", 3, ("score", "--loop")),
        ("alerts", 2, ("alerts", "run", "--interval", str(CADENCE_S))),
    ):
        for i in range(n):
            log = (tmp_path / f"{kind}-{i}.log").open("wb")
            logs.append(log)
            procs[kind].append(
                subprocess.Popen(forewarn_command(*argv), env=env, stdout=log, stderr=log)
            )
    try:
        yield procs
    finally:
        for p in procs["score"] + procs["alerts"]:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs["score"] + procs["alerts"]:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in logs:
            log.close()


def _holders(conn: psycopg.Connection, service: str) -> dict[int, str]:
    return leases.holders(conn, service)


def _scored_up_to(conn: psycopg.Connection) -> dict[str, int]:
    rows = conn.execute(
        "select m, max(l) from score_passes, unnest(machines, last_seq) as u(m, l) group by m"
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


@pytest.mark.slow
def test_three_scoring_workers_survive_a_sigkill(
    db_url: str, workers: dict[str, list[subprocess.Popen[bytes]]]
) -> None:
    reg = make_registry(machines=MACHINES)
    ids = [m.id for m in reg.machines]
    rng = np.random.default_rng(7)
    base = {s.name: s.min + 0.3 * (s.max - s.min) for s in PUMP_SENSORS}
    noise = {s.name: 0.004 * (s.max - s.min) for s in PUMP_SENSORS}
    t0 = datetime.now(UTC) - timedelta(seconds=400)
    with psycopg.connect(db_url, autocommit=True) as conn:
        upsert_registry(conn, reg)
        _wait(lambda: len(_holders(conn, "scoring")) == PARTITIONS, 240, "scoring leases")
        _wait(lambda: len(set(_holders(conn, "scoring").values())) == 3, 120, "3 scoring workers")
        _wait(lambda: len(_holders(conn, "alerts")) == PARTITIONS, 120, "alert leases")

        def write(seq: int) -> None:
            rows = []
            for m in ids:
                v = {k: base[k] + noise[k] * rng.standard_normal() for k in base}
                if m in FAULTY and seq >= 90:
                    v["bearing_temp"] += 30.0  # an abrupt fault: ~45 noise sigmas
                rows.append(Telemetry("s1", m, t0 + timedelta(seconds=seq), seq, v))
            with conn.transaction():
                insert_readings(conn, rows)

        killed_at = None
        victim = workers["score"][0]
        victim_worker = None
        for seq in range(130):
            write(seq)
            if seq == 50:
                victim_worker = next(
                    w for w in _holders(conn, "scoring").values() if f":{victim.pid}:" in w
                )
                victim.send_signal(signal.SIGKILL)
                workers["alerts"][0].send_signal(signal.SIGKILL)
                killed_at = time.monotonic()
            time.sleep(1.0 / PLANT_S_PER_WALL_S)
        assert killed_at is not None and victim_worker is not None
        _wait(
            lambda: _scored_up_to(conn) == dict.fromkeys(ids, 129),
            180,
            "every reading scored",
        )
        _wait(
            lambda: (
                conn.execute(
                    "select count(distinct machine_id) from alerts where mode = 'anomaly'"
                ).fetchone()
                == (len(FAULTY),)
            ),
            120,
            "an alert for every fault",
        )
        time.sleep(3 * CADENCE_S)  # a doubled alert would show up in a later pass

        # Every reading scored exactly once: per machine, the seq ranges of the passes tile 0..129.
        rows = conn.execute(
            "select m, f, l, worker from score_passes, unnest(machines, first_seq, last_seq)"
            " as u(m, f, l) order by m, f"
        ).fetchall()
        ranges: dict[str, list[tuple[int, int]]] = {}
        for m, f, l_, _ in rows:
            ranges.setdefault(m, []).append((int(f), int(l_)))
        for m in ids:
            expect = 0
            for f, l_ in ranges[m]:
                assert f == expect, f"{m}: pass starts at seq {f}, expected {expect}: {ranges[m]}"
                expect = l_ + 1
            assert expect == 130, m
        # The victim's partitions were taken over by the survivors, within about one lease.
        victim_parts = [
            int(r[0])
            for r in conn.execute(
                "select distinct partition from score_passes where worker = %s", (victim_worker,)
            )
        ]
        assert victim_parts
        takeover = conn.execute(
            "select max(gap) from (select partition, min(finished_at) filter (where worker <> %s)"
            "  - max(finished_at) filter (where worker = %s) as gap"
            "  from score_passes where partition = any(%s) group by partition) g",
            (victim_worker, victim_worker, victim_parts),
        ).fetchone()
        assert takeover is not None and takeover[0] is not None
        assert takeover[0].total_seconds() < 2 * LEASE_S + 2, takeover
        survivors = {
            r[0]
            for r in conn.execute(
                "select distinct worker from score_passes where finished_at"
                " > (select max(finished_at) from score_passes where worker = %s)",
                (victim_worker,),
            )
        }
        assert victim_worker not in survivors and len(survivors) == 2, survivors
        # One alert per fault, raised once, and none for healthy machines.
        raised = conn.execute(
            "select a.machine_id, count(*) from alert_transitions t join alerts a on a.id = t.alert_id"
            " where t.to_status = 'open' and t.from_status is null group by a.machine_id"
        ).fetchall()
        assert dict(raised) == dict.fromkeys(FAULTY, 1)
        statuses = conn.execute("select distinct status from alerts").fetchall()
        assert statuses == [("open",)]

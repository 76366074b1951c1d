"""`forewarn bench api`: seed 500 machines and 20,000 alerts, serve with uvicorn, load it over loopback.

The server runs in a child process (uvicorn, one worker); the load generator is this process
(httpx, a bounded number of requests in flight). Numbers are per endpoint; the top-level keys
are those of the polling endpoint (``GET /v1/alerts/changes``), the one maintenance systems hit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
from psycopg.types.json import Jsonb

from forewarn.assets import AssetRegistry, Costs, Line, Machine, MachineType, SensorSpec, Site
from forewarn.storage.keys import create_key
from forewarn.storage.migrate import migrate
from forewarn.storage.registry import upsert_registry

log = logging.getLogger(__name__)
# history is mostly closed; about 2% of alerts are still open or acknowledged
STATUSES = ("resolved",) * 70 + ("dismissed",) * 28 + ("acknowledged", "open")
SEVERITIES = ("low", "medium", "high", "critical")


def _with_schema(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


def seed(url: str, *, machines: int, alerts: int, seed: int = 7) -> None:
    """A registry of ``machines`` pumps, one champion prediction each, ``alerts`` alerts (COPY)."""
    rnd = random.Random(seed)
    costs = Costs(1000.0, 5000.0, 800.0, 150.0, 12.0, 2.0)
    sensors = (
        SensorSpec("vibration_rms", "mm/s", 0, 50),
        SensorSpec("bearing_temp", "degC", -20, 150),
    )
    reg = AssetRegistry(
        sites=[Site("s1", "Bench site")],
        lines=[Line("s1-l1", "s1", "Line")],
        types=[MachineType("pump", "Pump", sensors, ("bearing", "seal"), costs)],
        machines=[Machine(f"s1-m{i:05d}", "s1", "s1-l1", "pump") for i in range(machines)],
    )
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn:
        migrate(conn)
        upsert_registry(conn, reg)
        with conn.cursor() as cur:
            with cur.copy(
                "copy predictions (machine_id, ts, role, failure_prob, rul_h, rul_low_h,"
                " rul_high_h, mode, contributions) from stdin"
            ) as cp:
                for m in reg.machines:
                    p = rnd.random()
                    cp.write_row(
                        (
                            m.id,
                            now,
                            "champion",
                            p,
                            100 * (1 - p),
                            50 * (1 - p),
                            150 * (1 - p),
                            "bearing",
                            Jsonb({"vibration_rms_mean": p}),
                        )
                    )
            with cur.copy(
                "copy alerts (machine_id, mode, status, severity, failure_prob, ttf_h, ttf_low_h,"
                " ttf_high_h, contributions, inputs_age_s, recommended_action, created_at,"
                " updated_at, version, change_seq) from stdin"
            ) as cp:
                for i in range(alerts):
                    mid = reg.machines[i % machines].id
                    t = now - timedelta(seconds=alerts - i)
                    # each alert its own mode: the one-open-per-(machine, mode) index always holds
                    cp.write_row(
                        (
                            mid,
                            f"mode-{i // machines}",
                            rnd.choice(STATUSES),
                            rnd.choice(SEVERITIES),
                            rnd.random(),
                            24.0,
                            12.0,
                            48.0,
                            Jsonb({"vibration_rms_mean": 0.4, "bearing_temp_slope": 0.1}),
                            30.0,
                            "Plan maintenance this week: Lubricate or replace the bearing.",
                            t,
                            t,
                            1,
                            i + 1,
                        )
                    )
        conn.execute("update alert_change_counter set seq = %s", (alerts,))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum analyze alerts, machines")  # as autovacuum does after a bulk load


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVER = """
import sys, logging, uvicorn
from psycopg_pool import ConnectionPool
from api.app import create_app
from forewarn.settings import load_settings
url, port = sys.argv[1], int(sys.argv[2])
settings = load_settings(api={"rate_limit_per_min": 10**9})
with ConnectionPool(url, min_size=4, max_size=8, open=True) as pool:
    uvicorn.run(create_app(settings, pool=pool), host="127.0.0.1", port=port,
                log_level="warning", access_log=False)
"""

# The same server stack with one trivial route: what this machine, at this moment, can serve at
# all. Reported next to the API's figures so a loaded or slow machine is visible in the numbers.
BARE_SERVER = """
import sys, uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/v1/alerts/changes")
async def h():
    return {"alerts": [], "next_cursor": 0, "has_more": False}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


def _serve(code: str, url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", code, url, str(port)])
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/v1/alerts/changes", timeout=1).status_code in (200, 401):
                return proc, base
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("the API server did not become ready")
        time.sleep(0.1)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), to report CPU per request."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measured(
    proc: subprocess.Popen[bytes], base: str, key: str, paths: list[str], concurrency: int
) -> dict[str, Any]:
    """Load figures plus the server's CPU milliseconds per request (independent of machine load)."""
    cpu0 = _cpu_s(proc.pid)
    out = asyncio.run(_load(base, key, paths, concurrency))
    out["server_cpu_ms_per_req"] = round(
        (_cpu_s(proc.pid) - cpu0) * 1000 / max(1, out["requests"]), 3
    )
    return out


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=10)


async def _load(base: str, key: str, paths: list[str], concurrency: int) -> dict[str, Any]:
    lat: list[float] = []
    errors = 0
    it = iter(paths)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base, headers={"X-API-Key": key}, limits=limits, timeout=10.0
    ) as client:

        async def worker() -> None:
            nonlocal errors
            for path in it:
                t0 = time.perf_counter()
                try:
                    r = await client.get(path)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                lat.append(time.perf_counter() - t0)
                errors += not ok

        t0 = time.perf_counter()
        c0 = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
        client_cpu = time.process_time() - c0
    lat.sort()
    n = len(lat)
    return {
        "requests": n,
        "errors": errors,
        "rps": round(n / elapsed, 1),
        "p50_ms": round(lat[n // 2] * 1000, 2),
        "p99_ms": round(lat[min(n - 1, int(n * 0.99))] * 1000, 2),
        "client_cpu_ms_per_req": round(client_cpu * 1000 / max(1, n), 3),
    }


def bench_api(
    url: str,
    *,
    machines: int = 500,
    alerts: int = 20_000,
    requests: int = 20_000,
    concurrency: int = 8,
    poll_limit: int = 100,
    poll_lag: int = 20,
) -> dict[str, Any]:
    """Seed a scratch schema, serve it, load the polling and machine-list endpoints; returns figures.

    Polls start at random cursors among the last ``poll_lag`` changes, as a CMMS polling every few
    seconds does, so pages carry 0..poll_lag alerts.
    """
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a log line per request skews the load
    schema = f"bench_api_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"create schema {schema}")
    surl = _with_schema(url, schema)
    proc: subprocess.Popen[bytes] | None = None
    try:
        t0 = time.perf_counter()
        seed(surl, machines=machines, alerts=alerts)
        with psycopg.connect(surl) as conn:
            key = create_key(conn, f"bench-{schema}", "maintenance")
        seed_s = time.perf_counter() - t0
        proc, base = _serve(SERVER, surl)
        rnd = random.Random(1)
        lo = max(0, alerts - poll_lag)
        polls = [
            f"/v1/alerts/changes?cursor={rnd.randint(lo, alerts)}&limit={poll_limit}"
            for _ in range(requests)
        ]
        lists = ["/v1/machines"] * max(1, requests // 10)
        asyncio.run(_load(base, key, polls[: min(500, requests)], concurrency))  # warm-up
        poll = _measured(proc, base, key, polls, concurrency)
        machine_list = _measured(proc, base, key, lists, concurrency)
        _stop(proc)
        proc, bare_base = _serve(BARE_SERVER, surl)
        bare = _measured(proc, bare_base, key, polls[: max(1, requests // 4)], concurrency)
    finally:
        if proc is not None and proc.poll() is None:
            _stop(proc)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"drop schema if exists {schema} cascade")
    return {
        **poll,
        "endpoint": "GET /v1/alerts/changes",
        "machines": machines,
        "alerts": alerts,
        "concurrency": concurrency,
        "poll_limit": poll_limit,
        "poll_lag": poll_lag,
        "seed_s": round(seed_s, 2),
        "machine_list_requests": machine_list["requests"],
        "machine_list_errors": machine_list["errors"],
        "machine_list_rps": machine_list["rps"],
        "machine_list_p50_ms": machine_list["p50_ms"],
        "machine_list_p99_ms": machine_list["p99_ms"],
        "machine_list_server_cpu_ms_per_req": machine_list["server_cpu_ms_per_req"],
        "machine_list_client_cpu_ms_per_req": machine_list["client_cpu_ms_per_req"],
        "bare_fastapi_rps": bare["rps"],
        "bare_fastapi_p99_ms": bare["p99_ms"],
        "bare_fastapi_server_cpu_ms_per_req": bare["server_cpu_ms_per_req"],
        "bare_fastapi_client_cpu_ms_per_req": bare["client_cpu_ms_per_req"],
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }

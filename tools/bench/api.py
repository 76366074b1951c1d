"""`forewarn bench api`: seed 500 machines and 20,000 alerts, serve with uvicorn, load it over loopback.

The server runs in child processes (uvicorn workers accepting on one socket); the load generator
is wrk in another process when installed, else an httpx client in this one (see api/loadgen.py),
loopback only, bounded in time and connections. Numbers are per endpoint; the top-level keys
are those of the polling endpoint (``GET /v1/alerts/changes``), the one maintenance systems hit.
"""

from __future__ import annotations

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

import httpx
import psycopg
from psycopg.types.json import Jsonb

from forewarn.assets import AssetRegistry, Costs, Line, Machine, MachineType, SensorSpec, Site
from forewarn.storage.alerts import set_change_counter
from forewarn.storage.assets import upsert_registry
from forewarn.storage.bulk import copy_rows
from forewarn.storage.keys import create_key
from forewarn.storage.migrate import migrate
from forewarn.storage.schemas import temporary_schema
from tools.loadgen import have_wrk, httpx_load, wrk_load

log = logging.getLogger(__name__)
# history is mostly closed; about 2% of alerts are still open or acknowledged
DURATION_S = 10.0  # per endpoint, with wrk
WARMUP_S = 2.0
WORKERS = 2  # uvicorn processes sharing one listening socket; one per core here
STATUSES = ("resolved",) * 70 + ("dismissed",) * 28 + ("acknowledged", "open")
SEVERITIES = ("low", "medium", "high", "critical")
PREDICTION_COLUMNS = (
    "machine_id", "ts", "role", "failure_prob", "rul_h", "rul_low_h", "rul_high_h", "mode",
    "contributions",
)  # fmt: skip
ALERT_COLUMNS = (
    "machine_id", "mode", "status", "severity", "failure_prob", "ttf_h", "ttf_low_h", "ttf_high_h",
    "contributions", "inputs_age_s", "recommended_action", "created_at", "updated_at", "version",
    "change_seq",
)  # fmt: skip


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
    preds = []
    for m in reg.machines:
        p = rnd.random()
        preds.append(
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
    rows = []
    for i in range(alerts):
        mid = reg.machines[i % machines].id
        t = now - timedelta(seconds=alerts - i)
        # each alert its own mode: the one-open-per-(machine, mode) index always holds
        rows.append(
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
    with psycopg.connect(url) as conn:
        migrate(conn)
        upsert_registry(conn, reg)
        copy_rows(conn, "predictions", PREDICTION_COLUMNS, preds)
        copy_rows(conn, "alerts", ALERT_COLUMNS, rows)
        set_change_counter(conn, alerts)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum analyze alerts, machines")  # as autovacuum does after a bulk load


SERVER = """
import socket, sys, uvicorn
from psycopg_pool import ConnectionPool
from api.app import create_app
from forewarn.settings import load_settings
url, fd = sys.argv[1], int(sys.argv[2])
settings = load_settings(api={"rate_limit_per_min": 10**9})
with ConnectionPool(url, min_size=2, max_size=4, open=True) as pool:
    config = uvicorn.Config(create_app(settings, pool=pool), log_level="warning", access_log=False,
                            loop="uvloop", http="httptools")
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=fd)])
"""

# The same server stack with one trivial route: what this machine, at this moment, can serve at
# all. Reported next to the API's figures so a loaded or slow machine is visible in the numbers.
BARE_SERVER = """
import socket, sys, uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/v1/alerts/changes")
async def h():
    return {"alerts": [], "next_cursor": 0, "has_more": False}
config = uvicorn.Config(app, log_level="warning", access_log=False, loop="uvloop", http="httptools")
uvicorn.Server(config).run(sockets=[socket.socket(fileno=int(sys.argv[2]))])
"""


class Server:
    """``workers`` uvicorn processes accepting on one listening socket bound here (loopback)."""

    def __init__(self, code: str, url: str, workers: int) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        fd = self.sock.fileno()
        self.procs = [
            subprocess.Popen([sys.executable, "-c", code, url, str(fd)], pass_fds=(fd,))
            for _ in range(workers)
        ]
        deadline = time.monotonic() + 30
        while not self._ready():
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                self.stop()
                raise RuntimeError("the API server did not become ready")
            time.sleep(0.1)

    def _ready(self) -> bool:
        try:
            r = httpx.get(f"{self.base}/v1/alerts/changes", timeout=1)
        except httpx.HTTPError:
            return False
        return r.status_code in (200, 401)

    def cpu_s(self) -> float:
        """User + system CPU seconds of the worker processes (Linux /proc)."""
        total = 0.0
        for p in self.procs:
            with open(f"/proc/{p.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.sock.close()


def _load(
    server: Server, key: str, paths: list[str], *, duration_s: float, concurrency: int
) -> dict[str, Any]:
    """Load figures plus the server's CPU milliseconds per request (independent of machine load)."""
    cpu0 = server.cpu_s()
    if have_wrk():
        out = wrk_load(server.base, key, paths, duration_s=duration_s, connections=concurrency)
    else:
        n = max(
            1, int(duration_s * 100)
        )  # the httpx client manages about 100-500 requests a second
        out = httpx_load(
            server.base, key, (paths * (n // len(paths) + 1))[:n], concurrency=concurrency
        )
    out["server_cpu_ms_per_req"] = round(
        (server.cpu_s() - cpu0) * 1000 / max(1, out["requests"]), 3
    )
    return out


def _prefixed(prefix: str, figures: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "requests",
        "errors",
        "rps",
        "p50_ms",
        "p99_ms",
        "server_cpu_ms_per_req",
        "client_cpu_ms_per_req",
    )
    return {f"{prefix}_{k}": figures[k] for k in keys}


def bench_api(
    url: str,
    *,
    machines: int = 500,
    alerts: int = 20_000,
    requests: int = 20_000,
    concurrency: int = 8,
    poll_limit: int = 100,
    poll_lag: int = 20,
    duration_s: float = DURATION_S,
    workers: int = WORKERS,
) -> dict[str, Any]:
    """Seed a scratch schema, serve it, load the polling and machine-list endpoints; returns figures.

    With wrk on PATH each endpoint is loaded for ``duration_s`` seconds over ``concurrency``
    keep-alive connections; without it the httpx client sends about 100 requests per second of
    ``duration_s`` (``requests`` only sizes the list of distinct poll paths). Polls start at random
    cursors among the last ``poll_lag`` changes, as a CMMS polling every few seconds does, so
    pages carry 0..poll_lag alerts. The polling endpoint is measured with one worker and with
    ``workers``; the top-level figures are those with ``workers``.
    """
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a log line per request skews the load
    if not have_wrk():
        print(
            "note: wrk is not installed (apt-get install wrk); falling back to the httpx client,"
            " whose own CPU per request caps the rate: the figures are the client's, not the server's",
            file=sys.stderr,
        )
    server: Server | None = None
    load_avg = []
    with temporary_schema(url, "bench_api") as surl:
        try:
            t0 = time.perf_counter()
            seed(surl, machines=machines, alerts=alerts)
            with psycopg.connect(surl) as conn:
                key = create_key(conn, f"bench-{uuid.uuid4().hex[:8]}", "maintenance")
            seed_s = time.perf_counter() - t0
            rnd = random.Random(1)
            lo = max(0, alerts - poll_lag)
            polls = [
                f"/v1/alerts/changes?cursor={rnd.randint(lo, alerts)}&limit={poll_limit}"
                for _ in range(min(requests, 1000))
            ]
            lists = ["/v1/machines"]
            runs: dict[str, dict[str, Any]] = {}
            for name, code, n_workers, paths in (
                ("one_worker", SERVER, 1, polls),
                ("poll", SERVER, workers, polls),
                ("machine_list", SERVER, workers, lists),
                ("bare_fastapi", BARE_SERVER, workers, polls),
            ):
                server = Server(code, surl, n_workers)
                _load(server, key, paths, duration_s=WARMUP_S, concurrency=concurrency)
                load_avg.append(os.getloadavg()[0])
                runs[name] = _load(
                    server, key, paths, duration_s=duration_s, concurrency=concurrency
                )
                server.stop()
                server = None
        finally:
            if server is not None:
                server.stop()
    poll = runs["poll"]
    return {
        **poll,
        "endpoint": "GET /v1/alerts/changes",
        "workers": workers,
        "cpus": os.cpu_count(),
        "machines": machines,
        "alerts": alerts,
        "concurrency": concurrency,
        "poll_limit": poll_limit,
        "poll_lag": poll_lag,
        "seed_s": round(seed_s, 2),
        **_prefixed("one_worker", runs["one_worker"]),
        **_prefixed("machine_list", runs["machine_list"]),
        **_prefixed("bare_fastapi", runs["bare_fastapi"]),
        "load_avg_1m_before_runs": [round(x, 2) for x in load_avg],
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }

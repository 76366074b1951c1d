"""`forewarn bench fleet`: the whole pipeline under a live fleet, one size after another.

For each fleet size a fresh schema is migrated and the real services run as `forewarn` processes
(ingest, roll-up maintenance, scoring, alerts, API), exactly as a deployment runs them. Lean
publisher processes play the fleet in real time: every machine publishes ``hz`` readings a second,
spread evenly over each second (QoS 1 frames written by `tools.bench.mqtt_load`, not paho, whose
publish path alone cost more CPU than all of Forewarn's services; payloads byte-identical to the
contract's encoder; event time = publish time, so the plant clock is the wall clock). At least
``faults`` machines get an abrupt fault (one sensor jumps by a quarter of its range) at times
spread over the run.

Measured (all from the database, the API or the OS, never from the services' own claims):

- ``lag_p50_s``/``lag_p99_s``: ``received_at - ts`` of every stored reading (``received_at`` is
  the ingest transaction's start, a few ms before its commit);
- ``scoring_pass_s``: p99 of the streaming scorer's pass over all machines (``score_passes``);
  ``scoring_delay_p99_s``: stored -> scored, per reading;
- ``alert_latency_p50_s``/``p99``: the publish of the reading that completes the alert policy's
  condition (``models.policy.step`` replayed over the machine's streaming scores: the k-th
  consecutive high score) -> the alert first seen on ``/v1/alerts/changes`` (polled every 0.2 s);
  ``fault_to_alert_p50_s``/``p99``: the same from the fault's first reading;
- ``offered_msgs_per_s``: readings the broker acknowledged (PUBACK) per second of the run; a
  publisher that falls behind stops at the end anyway, so on a saturated machine this is below
  ``target_msgs_per_s`` and ``generated`` shows what was produced;
- ``lost``: published (acknowledged by the broker) minus stored (distinct (machine, seq));
- ``cpu_s_per_1k_msgs`` and ``rss_mb`` per service (psutil, the process and its children), the
  simulated fleet (``publisher``) and, when they run on this machine, the PostgreSQL server
  (``postgres``: the postmaster and its backends, live or reaped) and the broker; ``cpu_cores_used`` is their
  sum per second of publishing; ``postgres_cpu_s_per_1k_msgs_by_client`` splits the server's
  share by the client its backends serve (``forewarn ingest``, ``forewarn score --loop``...);
- ``db_bytes_per_machine_day``: growth of the schema's tables and indexes per machine and day.

``sustained``: nothing lost, the backlog drained within ``DRAIN_S`` of the end, lag not growing
(p99 of the last quarter at most 1.5x that of the second quarter plus 0.5 s), and the scorer kept
its cadence (p99 pass within the cadence, every stored reading scored).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import psycopg

from forewarn.assets import AssetRegistry
from forewarn.broker import free_port
from forewarn.contract import SCHEMA_VERSION, Telemetry, encode, format_ts, topic_for
from forewarn.factory import load_factory
from forewarn.storage import bench_figures as bf
from forewarn.storage.assets import upsert_registry
from forewarn.storage.keys import create_key
from forewarn.storage.schemas import temporary_schema
from forewarn.supervisor import Supervisor, forewarn_command
from models import policy

log = logging.getLogger(__name__)

WARMUP_S = 40.0  # the streaming baselines need 30 readings before they score
DRAIN_S = 20.0
ACK_WAIT_S = 60.0  # a publisher waits this long for the broker's last acks
ALERT_WAIT_S = 60.0  # after the drain, how long the poller may still wait for the last alerts
POLL_S = 0.2
SLICES_PER_S = 10  # each second's readings are published in this many evenly spaced slices
FAULT_SHARE = 0.25  # a fault moves one sensor by this share of its physical range
SCORER_MSGS_PER_S = 2500  # default share of one `forewarn score --loop` worker (scale-out)
PUBLISHER_MSGS_PER_S = 5000  # default share of one publisher process (raw QoS 1 frames)


@dataclass(frozen=True)
class Plan:
    machines: list[tuple[str, str, list[tuple[str, float, float]]]]  # id, site, sensors (n, lo, hi)
    faults: dict[str, float]  # machine -> seconds after start


def plan_fleet(n: int, faults: int, duration_s: float, seed: int = 7) -> tuple[AssetRegistry, Plan]:
    """The factory's machine mix scaled to ``n`` machines, and when which machine faults."""
    reg = load_factory(None, machines=n).registry()
    types = {t.id: t for t in reg.types}
    machines = [
        (m.id, m.site_id, [(s.name, s.min, s.max) for s in types[m.type_id].sensors])
        for m in reg.machines
    ]
    rng = np.random.default_rng(seed)
    k = min(max(faults, 0), len(machines))
    chosen = rng.choice(len(machines), size=k, replace=False)
    span = max(duration_s - WARMUP_S - 15.0, 1.0)
    at = WARMUP_S + np.sort(rng.uniform(0, span, size=k))
    return reg, Plan(machines, {machines[i][0]: float(t) for i, t in zip(chosen, at, strict=True)})


def wire_template(machine: str, sensors: list[str]) -> str:
    """The machine's telemetry payload as a %-template (ts, seq, one float per sensor).

    Byte-identical to `forewarn.contract.encode` (floats print as their repr in both; checked by
    :func:`check_template` before every run), at a fraction of its cost.
    """
    values = ",".join(f'"{n}":%r' for n in sensors)
    return (
        f'{{"schema":{SCHEMA_VERSION},"machine":"{machine}","ts":"%s","seq":%d,'
        f'"values":{{{values}}}}}'
    )


def check_template() -> None:
    """Raise if the lean template and the contract's encoder disagree on a payload."""
    ts = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    vals = {"a": 1.5, "b": -2.25, "c": 0.1 + 0.2, "d": 1234567.891}
    want = encode(Telemetry("s", "m-1", ts, 7, dict(vals)))
    got = (wire_template("m-1", list(vals)) % (format_ts(ts), 7, *vals.values())).encode()
    if want != got:
        raise RuntimeError(f"publisher template drifted from the contract: {got!r} != {want!r}")


def _publisher(
    url: str,
    root: str,
    plan: Plan,
    hz: float,
    duration_s: float,
    start_at: float,
    seed: int,
    out: Any,
) -> None:
    """One publisher process: its machines, ``hz`` readings each a second, until ``duration_s``.

    Each second is cut into slices; a slice's readings share one timestamp (taken when the slice
    starts publishing, so a slow slice makes lag look worse, never better), their noise is drawn
    in one numpy call and their payloads filled into per-machine templates.
    """
    from urllib.parse import urlsplit

    from ingest.service import broker_address
    from tools.bench.mqtt_load import RawPublisher

    host, port, tls, _v5 = broker_address(url)
    if tls:
        raise RuntimeError(
            "the fleet bench's load generator speaks plain MQTT; point it at a local broker"
        )
    parts = urlsplit(url)
    c = RawPublisher(
        host, port, f"fleet-pub-{uuid.uuid4().hex[:8]}",
        username=parts.username, password=parts.password,
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    n = len(plan.machines)
    width = max(len(sensors) for _, _, sensors in plan.machines)
    mu = np.zeros((n, width))
    sd = np.zeros((n, width))
    jump = np.zeros(n)
    templates, topics = [], []
    for i, (m, site, sensors) in enumerate(plan.machines):
        for j, (_, lo, hi) in enumerate(sensors):
            mu[i, j] = lo + rng.uniform(0.3, 0.6) * (hi - lo)
            sd[i, j] = 0.004 * (hi - lo)
        jump[i] = FAULT_SHARE * (sensors[0][2] - sensors[0][1])
        templates.append(wire_template(m, [x[0] for x in sensors]))
        topics.append(topic_for(site, m, "telemetry", root).encode())
    widths = [len(sensors) for _, _, sensors in plan.machines]
    fault_at = np.array([plan.faults.get(m, np.inf) for m, _, _ in plan.machines])
    sent, seq, late, fault_pub = 0, 0, 0.0, []
    period = 1.0 / hz
    slices = max(1, min(SLICES_PER_S, n))
    bounds = np.linspace(0, n, slices + 1).astype(int)
    while time.time() < start_at:
        time.sleep(0.001)
    tick = 0
    # a publisher that cannot keep up stops at the end anyway: what it did not send was not offered
    while (
        start_at + tick * period < start_at + duration_s and time.time() < start_at + duration_s + 5
    ):
        seq += 1
        for s_ in range(slices):
            t_slice = start_at + tick * period + s_ * period / slices
            delay = t_slice - time.time()
            if delay > 0:
                time.sleep(delay)
            lo_i, hi_i = int(bounds[s_]), int(bounds[s_ + 1])
            now = time.time()
            late = max(late, now - t_slice)
            vals = mu[lo_i:hi_i] + sd[lo_i:hi_i] * rng.standard_normal((hi_i - lo_i, width))
            faulty = np.flatnonzero(now - start_at >= fault_at[lo_i:hi_i])
            vals[faulty, 0] += jump[lo_i + faulty]
            vals = np.round(vals, 3)
            ts = format_ts(datetime.fromtimestamp(now, UTC))
            c.publish_many(
                [
                    (
                        topics[i],
                        (templates[i] % (ts, seq, *vals[i - lo_i, : widths[i]].tolist())).encode(),
                    )
                    for i in range(lo_i, hi_i)
                ]
            )
            sent += hi_i - lo_i
            fault_pub += [(plan.machines[lo_i + int(k)][0], seq, now) for k in faulty]
        tick += 1
    end = time.time()
    c.wait_inflight(0, ACK_WAIT_S)
    acked_at = time.time()
    acked = c.acked
    c.close()
    cpu = psutil.Process().cpu_times()
    out.put(
        {
            "generated": sent,
            "sent": acked,
            "fault_pub": fault_pub,
            "cpu_s": cpu.user + cpu.system,
            "publish_s": end - start_at,
            "acked_s": acked_at - start_at,
            "max_late_s": late,
        }
    )


def _server_pids(db_url: str, mqtt_url: str) -> dict[str, int]:
    """The PostgreSQL postmaster and the broker, when they run on this machine (their CPU counts too).

    A server shared with other work (the machine's own PostgreSQL, say) counts that work as well;
    the bench's defaults start both servers for itself.
    """
    from ingest.service import broker_address

    found: dict[str, int] = {}
    with psycopg.connect(db_url) as conn:
        backend = conn.info.backend_pid
    try:
        parent = psutil.Process(backend).parent()
        if parent is not None and "postgres" in parent.name():
            found["postgres"] = parent.pid
    except psutil.Error:
        pass  # a remote server: not ours to measure
    _host, port, _tls, _v5 = broker_address(mqtt_url)
    for c in psutil.net_connections(kind="tcp"):
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            found["broker"] = c.pid
            break
    return found


class _Sampler(threading.Thread):
    """Once a second: peak RSS of each service (with its children), and the CPU time of every
    PostgreSQL backend by the client it serves (libpq's application name: `forewarn ingest`...).

    A backend's CPU is its latest reading minus its first; one that closes keeps what it had.
    """

    def __init__(self, pids: dict[str, int], db_url: str | None = None) -> None:
        super().__init__(daemon=True)
        self.pids, self.peak = pids, dict.fromkeys(pids, 0.0)
        self.db_url = db_url
        self.backends: dict[int, tuple[str, float, float]] = {}  # pid -> (client, first, last)
        self.stop = threading.Event()

    def run(self) -> None:
        conn = psycopg.connect(self.db_url, autocommit=True) if self.db_url else None
        try:
            while True:
                for name, pid in self.pids.items():
                    self.peak[name] = max(self.peak[name], _tree(pid)[1])
                if conn is not None:
                    self._sample_backends(conn)
                if self.stop.wait(1.0):
                    break
        finally:
            if conn is not None:
                conn.close()

    def _sample_backends(self, conn: psycopg.Connection) -> None:
        for pid, client in bf.backend_clients(conn).items():
            try:
                t = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            cpu = t.user + t.system
            first = self.backends.get(pid, (client, cpu, cpu))[1]
            self.backends[pid] = (client, first, cpu)

    def postgres_by_client(self) -> dict[str, float]:
        """CPU seconds of the server's backends per client, since each was first seen."""
        out: dict[str, float] = {}
        for client, first, last in self.backends.values():
            out[client] = out.get(client, 0.0) + last - first
        return out


def _tree(pid: int) -> tuple[float, float]:
    """(CPU seconds, RSS MiB) of a process and its descendants, live or reaped (0 when gone)."""
    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0, 0.0
    cpu = rss = 0.0
    for q in procs:
        try:
            t = q.cpu_times()
            # with the children it reaped: a backend or tick process that exited still counts
            cpu += t.user + t.system + t.children_user + t.children_system
            rss += q.memory_info().rss / 2**20
        except psutil.NoSuchProcess:
            continue
    return cpu, rss


class _Poller(threading.Thread):
    """Polls /v1/alerts/changes like a maintenance system; remembers when each alert first showed."""

    def __init__(self, base_url: str, key: str) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=10)
        self.first_seen: dict[tuple[str, str], float] = {}
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        cursor = 0
        while not self.stop.wait(POLL_S):
            try:
                r = self.client.get("/v1/alerts/changes", params={"cursor": cursor, "limit": 1000})
                r.raise_for_status()
            except httpx.HTTPError:
                self.errors += 1
                continue
            seen = time.time()
            body = r.json()
            for a in body["alerts"]:
                self.first_seen.setdefault((a["machine_id"], a["mode"]), seen)
            cursor = body["next_cursor"]


def _wait(cond: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    return False


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _pct(xs: list[float] | np.ndarray, q: float) -> float | None:
    return None if len(xs) == 0 else round(float(np.percentile(np.asarray(xs), q)), 3)


def run_size(
    server_url: str,
    mqtt_url: str,
    machines: int,
    *,
    hz: float,
    duration_s: float,
    faults: int,
    publishers: int,
    scorers: int = 1,
    log_dir: Path,
    high: float,
    low: float,
    k: int,
    cadence_s: float,
) -> dict[str, Any]:
    """One fleet size on a fresh schema; returns its figures."""
    check_template()
    reg, plan = plan_fleet(machines, faults, duration_s)
    root = f"fleet-{uuid.uuid4().hex[:8]}"
    api_port, metrics_port = free_port(), free_port()
    with ExitStack() as stack:
        url = stack.enter_context(temporary_schema(server_url, "fleet"))
        with psycopg.connect(url, autocommit=True) as conn:
            upsert_registry(conn, reg)
            key = create_key(conn, "fleet-bench", "maintenance")
        env = {
            "FOREWARN_DB__URL": url,
            "FOREWARN_MQTT__URL": mqtt_url,
            "FOREWARN_MQTT__TOPIC_ROOT": root,
            "FOREWARN_MQTT__CLIENT_ID": f"{root}-ingest",
            "FOREWARN_INGEST__METRICS_PORT": str(metrics_port),
            "FOREWARN_API__PORT": str(api_port),
            "FOREWARN_API__RATE_LIMIT_PER_MIN": "1000000",
            "FOREWARN_MODELS__ALERT_HIGH": str(high),
            "FOREWARN_MODELS__ALERT_LOW": str(low),
            "FOREWARN_MODELS__ALERT_K": str(k),
            "FOREWARN_MODELS__STREAM_CADENCE_S": str(cadence_s),
            "FOREWARN_LOG_LEVEL": "WARNING",
        }
        sup = Supervisor(env, log_dir / f"fleet-{machines}")
        stack.callback(sup.stop_all)
        children = {
            "ingest": sup.start("ingest", forewarn_command("ingest")),
            "maintain": sup.start("maintain", forewarn_command("maintain", "--every", "10")),
            "alerts": sup.start("alerts", forewarn_command("alerts", "run", "--interval", "0.5")),
            "api": sup.start("api", forewarn_command("api")),
        }
        for i in range(scorers):  # scale-out workers sharing the partitions through leases
            name = "score" if i == 0 else f"score-{i + 1}"
            children[name] = sup.start(name, forewarn_command("score", "--loop"))
        ok = _wait(lambda: _ready(f"http://127.0.0.1:{metrics_port}/readyz"), 120) and _wait(
            lambda: _ready(f"http://127.0.0.1:{api_port}/v1/health"), 120
        )
        if not ok:
            raise RuntimeError(f"services did not become ready; logs in {sup.log_dir}")
        pids = {name: c.proc.pid for name, c in children.items()}
        servers = _server_pids(url, mqtt_url)
        pids |= servers
        cpu0 = {name: _tree(pid)[0] for name, pid in pids.items()}
        sampler = _Sampler(pids, url if "postgres" in servers else None)
        sampler.start()
        poller = _Poller(f"http://127.0.0.1:{api_port}", key)
        poller.start()
        with psycopg.connect(url, autocommit=True) as conn:
            bytes0 = bf.schema_bytes(conn)
        # publishers: each a share of the machines, all starting on the same second
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        start_at = time.time() + 3.0
        procs = []
        for i in range(publishers):
            part = Plan(
                plan.machines[i::publishers],
                {
                    m: t
                    for m, t in plan.faults.items()
                    if m in {x[0] for x in plan.machines[i::publishers]}
                },
            )
            p = ctx.Process(
                target=_publisher,
                args=(mqtt_url, root, part, hz, duration_s, start_at, 100 + i, queue),
            )
            p.start()
            procs.append(p)
        results = [queue.get(timeout=duration_s + 300) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        published_end = time.time()
        sent = sum(r["sent"] for r in results)
        acked_s = max(r["acked_s"] for r in results)
        late_s = max(r["max_late_s"] for r in results)
        fault_pub = [x for r in results for x in r["fault_pub"]]
        with psycopg.connect(url, autocommit=True) as conn:
            drained = _wait(lambda: bf.count_readings(conn) >= sent, DRAIN_S)
            drain_s = time.time() - published_end
            _wait(lambda: len(poller.first_seen) >= len(plan.faults), ALERT_WAIT_S)
            poller.stop.set()
            sampler.stop.set()
            cpu = {name: _tree(pid)[0] - cpu0[name] for name, pid in pids.items()}
            figures = _figures(conn, start_at, duration_s, cadence_s)
            alert = _alert_latency(conn, plan, fault_pub, poller.first_seen, high, low, k)
            bytes1 = bf.schema_bytes(conn)
            storage = _storage(conn, hz)
    stored = figures.pop("stored")
    cpu["publisher"] = sum(r["cpu_s"] for r in results)
    peak = dict(sampler.peak)
    for name in [n for n in cpu if n.startswith("score-")]:  # report the scorers as one service
        cpu["score"] += cpu.pop(name)
        peak["score"] += peak.pop(name)
    per_1k = {n: round(1000 * c / max(stored, 1), 3) for n, c in cpu.items()}
    total = round(sum(c for n, c in cpu.items()) / max(duration_s, 1e-9), 2)
    pg_clients = {
        n: round(1000 * c / max(stored, 1), 3)
        for n, c in sorted(sampler.postgres_by_client().items(), key=lambda x: -x[1])
        if c > 0
    }
    machine_days = machines * duration_s / 86400.0
    lag_ok = (
        figures["lag_last_quarter_p99_s"] is not None
        and figures["lag_last_quarter_p99_s"]
        <= 1.5 * (figures["lag_second_quarter_p99_s"] or 0) + 0.5
    )
    scoring_ok = (
        figures["scoring_pass_s"] is not None
        and figures["scoring_pass_s"] <= figures["cadence_s"]
        and figures["unscored"] == 0
    )
    lost = max(0, sent - stored)  # stored beyond the acked: acks still in flight at the end
    return {
        "machines": machines,
        "hz": hz,
        "duration_s": duration_s,
        "publishers": publishers,
        "scorers": scorers,
        "target_msgs_per_s": round(machines * hz, 1),
        "generated": sum(r["generated"] for r in results),
        "offered_msgs_per_s": round(sent / duration_s, 1),
        "publisher_max_late_s": round(late_s, 3),
        "publisher_acked_s": round(acked_s, 2),
        "stored_msgs_per_s": figures.pop("stored_msgs_per_s"),
        "published": sent,
        "stored": stored,
        "lost": lost,
        **figures,
        **alert,
        "api_poll_errors": poller.errors,
        "drained": drained,
        "drain_s": round(drain_s, 2),
        "cpu_s_per_1k_msgs": per_1k,
        "rss_mb": {n: round(v, 1) for n, v in peak.items()},
        "cpu_cores_used": total,
        "postgres_cpu_s_per_1k_msgs_by_client": pg_clients,
        "servers_measured": sorted(servers),
        "db_bytes_per_machine_day": round((bytes1 - bytes0) / machine_days),
        "storage": storage,
        "lag_bounded": lag_ok,
        "scored_within_cadence": scoring_ok,
        "sustained": bool(lost == 0 and drained and lag_ok and scoring_ok),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _storage(conn: psycopg.Connection, hz: float) -> dict[str, Any]:
    """Bytes per reading: where they go, and what a typed float4[] would take instead of jsonb."""
    sizes = bf.value_sizes(conn)
    n = bf.count_readings(conn)
    heap, idx, total = bf.table_bytes(conn, "readings")
    per_reading = total / max(n, 1)
    return {
        "readings_bytes_per_row": round(per_reading, 1),
        "readings_heap_and_toast_bytes_per_row": round(heap / max(n, 1), 1),
        "readings_index_bytes_per_row": round(idx / max(n, 1), 1),
        "values_jsonb_bytes": round(float(sizes[0] or 0), 1),
        "values_float4_array_bytes": round(float(sizes[1] or 0), 1),
        "readings_gb_per_1000_machines_month": round(per_reading * hz * 86400 * 30 * 1000 / 1e9, 1),
    }


def _figures(
    conn: psycopg.Connection, start_at: float, duration_s: float, cadence_s: float
) -> dict[str, Any]:
    """Lag, throughput and scoring figures from the database."""
    rows = bf.reading_times(conn)
    ts = np.array([float(r[0]) for r in rows])
    rec = np.array([float(r[1]) for r in rows])
    lag = rec - ts
    q = duration_s / 4
    rel = ts - start_at
    window = (rel >= 0) & (rel < duration_s)
    span = float(rec.max() - rec.min()) if len(rec) else 0.0
    pass_s = [(end - start).total_seconds() for start, end in bf.pass_times(conn)]
    delays = bf.scoring_delays(conn)
    unscored = bf.unscored_readings(conn)

    return {
        "stored": len(ts),
        "stored_msgs_per_s": round(len(ts) / span, 1) if span else None,
        "lag_p50_s": _pct(lag, 50),
        "lag_p99_s": _pct(lag, 99),
        "lag_max_s": round(float(lag.max()), 3) if len(lag) else None,
        "lag_second_quarter_p99_s": _pct(lag[window & (rel >= q) & (rel < 2 * q)], 99),
        "lag_last_quarter_p99_s": _pct(lag[window & (rel >= 3 * q)], 99),
        "scoring_pass_s": _pct(pass_s, 99),
        "scoring_pass_p50_s": _pct(pass_s, 50),
        "scoring_passes": len(pass_s),
        "scoring_delay_p99_s": _pct(delays, 99),
        "unscored": unscored,
        "cadence_s": cadence_s,
    }


def _alert_latency(
    conn: psycopg.Connection,
    plan: Plan,
    fault_pub: list[tuple[str, int, float]],
    first_seen: dict[tuple[str, str], float],
    high: float,
    low: float,
    k: int,
) -> dict[str, Any]:
    """Per injected fault: completing reading's publish -> alert on the API (see the docstring)."""
    th = policy.Thresholds(high=high, low=low, k=k)
    pub = {(m, s): t for m, s, t in fault_pub}
    onset: dict[str, float] = {}
    for m, _, t in sorted(fault_pub, key=lambda x: x[2]):
        onset.setdefault(m, t)
    latency, from_fault, missed = [], [], []
    for m in plan.faults:
        seen = first_seen.get((m, "anomaly"))
        if seen is None or m not in onset:
            missed.append(m)
            continue
        rows = bf.stream_scores(conn, m)
        state, completing = policy.HysteresisState(), None
        for prob, seq in rows:
            state, d = policy.step(state, float(prob), th)
            if d == "raise":
                completing = int(seq)
                break
        if completing is None or (m, completing) not in pub:
            missed.append(m)
            continue
        latency.append(seen - pub[(m, completing)])
        from_fault.append(seen - onset[m])
    return {
        "faults": len(plan.faults),
        "faults_alerted": len(latency),
        "faults_missed": missed,
        "alert_latency_p50_s": _pct(latency, 50),
        "alert_latency_p99_s": _pct(latency, 99),
        "alert_latency_max_s": round(max(latency), 3) if latency else None,
        "fault_to_alert_p50_s": _pct(from_fault, 50),
        "fault_to_alert_p99_s": _pct(from_fault, 99),
        "false_alerts": sum(
            1 for (m, mode) in first_seen if mode == "anomaly" and m not in plan.faults
        ),
    }


def run_fleet(
    server_url: str,
    mqtt_url: str,
    sizes: list[int],
    *,
    hz: float,
    duration_s: float,
    faults: int,
    publishers: int | None,
    scorers: int | None = None,
    log_dir: Path,
    high: float,
    low: float,
    k: int,
    cadence_s: float,
) -> dict[str, Any]:
    """Every size in turn; the largest that was sustained."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    fleets = []
    for n in sizes:
        pubs = publishers or max(1, min(6, int(np.ceil(n * hz / PUBLISHER_MSGS_PER_S))))
        workers = scorers or max(1, int(np.ceil(n * hz / SCORER_MSGS_PER_S)))
        log.info(
            "fleet bench: %d machines at %s Hz for %ss (%d publishers, %d scorers)",
            n, hz, duration_s, pubs, workers,
        )  # fmt: skip
        fleets.append(
            run_size(
                server_url,
                mqtt_url,
                n,
                hz=hz,
                duration_s=duration_s,
                faults=faults,
                publishers=pubs,
                scorers=workers,
                log_dir=log_dir,
                high=high,
                low=low,
                k=k,
                cadence_s=cadence_s,
            )
        )
    sustained = [f["machines"] for f in fleets if f["sustained"]]
    return {
        "fleets": fleets,
        "largest_sustained": max(sustained) if sustained else None,
        "cpu_count": os.cpu_count(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }

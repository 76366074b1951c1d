"""`forewarn demo`: the whole plant on embedded defaults, as child processes of one command.

Order: database (embedded unless FOREWARN_DB__URL) -> broker (local unless FOREWARN_MQTT__URL) ->
asset registry -> bootstrap models (trained on simulated history) -> demo API key -> services
(ingest, scoring, alerting, API, dashboard) -> simulator. Ctrl-C (or the end of a headless run)
stops the simulator first, lets ingest drain, then stops everything else.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from forewarn.settings import Settings
from forewarn.supervisor import Child, Supervisor, forewarn_command, wait_until

log = logging.getLogger(__name__)

ONE_SHOT = ("bootstrap", "backtest")  # children expected to finish on their own
BACKTEST_ARGS = (
    "backtest",
    "--simulate",
    "--machines",
    "16",
    "--sim-days",
    "30",
    "--save",
    "--no-curve",
)
INGEST_READY_TIMEOUT_S = 120.0
DRAIN_TIMEOUT_S = 180.0  # a loaded 2-core machine can lag the publisher by a minute or more
PROGRESS_INTERVAL_S = 1.0
SIMULATOR_STATE = "simulator-state.pkl"  # in the state dir: the plant, saved for an exact resume


@dataclass(frozen=True)
class DemoOptions:
    machines: int = 60
    speed: float = 3600.0  # simulated seconds per wall second
    headless: bool = False
    duration_s: float | None = None
    reset: bool = False
    bootstrap_days: float = 30.0
    bootstrap_machines: int = 36
    seed: int = 1
    api_port: int = 0  # 0 = a free port
    dashboard_port: int = 0


def free_port() -> int:
    """A TCP port free on loopback right now (embedded servers never assume 1883/5432/8000)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def counts(url: str) -> dict[str, int]:
    """Rows that show the pipeline working: readings, events, dead letters, predictions, alerts."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select (select count(*) from readings), (select count(*) from machine_events),"
            " (select count(*) from dead_letters), (select count(*) from predictions),"
            " (select count(*) from alerts), (select count(distinct machine_id) from predictions)"
        ).fetchone()
    assert row is not None
    keys = ("readings", "events", "dead_letters", "predictions", "alerts", "machines_scored")
    return dict(zip(keys, (int(v) for v in row), strict=True))


@contextlib.contextmanager
def _broker(settings: Settings) -> Iterator[str]:
    if settings.mqtt.url is not None:
        yield settings.mqtt.url
        return
    from forewarn.broker import local_broker

    with local_broker(settings.state_dir) as url:
        yield url


def _reset_state(state_dir: Path) -> None:
    pgdata = state_dir / "pg"
    if (pgdata / "postmaster.pid").exists():
        from forewarn.storage.server import embedded_postgres

        with embedded_postgres(state_dir):  # attach, then the last handle's exit stops it
            pass
    shutil.rmtree(state_dir, ignore_errors=True)


def run_demo(settings: Settings, opts: DemoOptions) -> dict[str, Any] | None:
    """Run the demo; in headless mode return the JSON summary."""
    from forewarn.storage.db import prepared_database

    # SIGTERM outside the live loop (bootstrap, drain) unwinds like Ctrl-C, so every child,
    # the broker and the embedded database are still stopped on the way out.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    if opts.reset:
        _reset_state(settings.state_dir)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with prepared_database(settings) as db_url, _broker(settings) as mqtt_url:
        return _run(settings, opts, db_url, mqtt_url, started)


def _raise_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _run(
    settings: Settings, opts: DemoOptions, db_url: str, mqtt_url: str, started: float
) -> dict[str, Any] | None:
    from forewarn.factory import load_factory
    from forewarn.storage.assets import upsert_registry
    from forewarn.storage.keys import create_key

    factory = load_factory(settings.factory, machines=opts.machines)
    with psycopg.connect(db_url) as conn:
        upsert_registry(conn, factory.registry())
        conn.commit()
    env = _child_env(settings, opts, db_url, mqtt_url)
    logs = settings.state_dir / "logs"
    api_port = opts.api_port or free_port()
    dash_port = opts.dashboard_port or free_port()
    summary_path = settings.state_dir / "simulator-summary.json"
    summary_path.unlink(missing_ok=True)

    with Supervisor(env=env, log_dir=logs) as sup:
        _bootstrap_models(sup, opts)
        with psycopg.connect(db_url) as conn:
            key = create_key(conn, name=f"demo-{time.time_ns()}", role="admin")
            conn.commit()
        before = counts(db_url)  # a resumed demo counts only what this run published
        ingest = sup.start("ingest", forewarn_command("ingest"))
        # The simulator publishes only once ingest is subscribed: a fresh session on a real
        # broker keeps nothing published before its subscription exists.
        ready_url = f"http://127.0.0.1:{env['FOREWARN_INGEST__METRICS_PORT']}/readyz"
        if not wait_until(lambda: _ready(ready_url) or not ingest.alive, INGEST_READY_TIMEOUT_S):
            raise RuntimeError(
                f"ingest was not ready in {INGEST_READY_TIMEOUT_S:.0f}s; see {ingest.log_path}"
            )
        if not ingest.alive:
            raise RuntimeError(
                f"ingest exited with {ingest.proc.returncode}; see {ingest.log_path}"
            )
        sup.start("scoring", forewarn_command("score", "--loop"))
        sup.start("alerts", forewarn_command("alerts", "run"))
        sup.start("maintain", forewarn_command("maintain", "--every", "30"))  # roll-ups, retention
        sup.start("api", forewarn_command("api", "--port", str(api_port)))
        if not opts.headless:
            sup.start("dashboard", forewarn_command("dashboard", "--port", str(dash_port)))
            # A backtest on simulated history, so the ROI page has figures before the live
            # ledger has any (one-shot; it stores its result in this database).
            sup.start("backtest", forewarn_command(*BACKTEST_ARGS, "--seed", str(opts.seed + 2000)))
        sim_args = _simulator_args(db_url, opts, mqtt_url, summary_path, settings.mqtt.topic_root)
        sim = sup.start("simulator", forewarn_command(*sim_args))
        _announce(opts, api_port, dash_port, key, logs)
        _watch(sup, db_url, opts)
        published = _stop_simulator(sup, sim, summary_path)
        stored_before = before["readings"] + before["events"]
        drained = wait_until(
            lambda: _stored(db_url) - stored_before >= published["messages"], DRAIN_TIMEOUT_S
        )
        if not drained:
            log.warning(
                "ingest did not store every published message within %.0fs", DRAIN_TIMEOUT_S
            )
        final = counts(db_url)
        api_sees_alerts = _api_alert_count(api_port, key)
    stored = final["readings"] + final["events"] - stored_before
    result = {
        "published": published["messages"],
        "stored": stored,
        "lost": max(0, published["messages"] - stored),
        "dead_lettered": final["dead_letters"] - before["dead_letters"],
        "predictions": final["predictions"] - before["predictions"],
        "alerts": final["alerts"] - before["alerts"],
        "api_alerts": api_sees_alerts,
        "machines_scored": final["machines_scored"],
        "failures": published["failures"],
        "seconds": round(time.monotonic() - started, 1),
    }
    return result if opts.headless else None


def _child_env(settings: Settings, opts: DemoOptions, db_url: str, mqtt_url: str) -> dict[str, str]:
    env = {
        "FOREWARN_DB__URL": db_url,
        "FOREWARN_MQTT__URL": mqtt_url,
        "FOREWARN_STATE_DIR": str(settings.state_dir),
        "FOREWARN_INGEST__METRICS_PORT": str(free_port()),
        # Plant-time limits scaled to the accelerated clock: half a wall minute without data is
        # stale, a wall minute unacknowledged escalates.
        "FOREWARN_MODELS__STALE_AFTER_S": str(max(settings.models.stale_after_s, 30 * opts.speed)),
        "FOREWARN_API__ESCALATE_AFTER_S": str(max(60.0, 60 * opts.speed)),
        # Many processes share 2 cores: one OpenMP/BLAS thread each, and passive waits.
        "OMP_NUM_THREADS": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    if settings.factory is not None:
        env["FOREWARN_FACTORY"] = str(settings.factory)
    return env


def _simulator_args(
    db_url: str, opts: DemoOptions, mqtt_url: str, summary: Path, topic_root: str
) -> list[str]:
    """Simulator arguments; a resumed demo continues the plant's clock and sequence numbers."""
    args = [
        "simulate",
        "--topic-root",
        topic_root,
        "--machines",
        str(opts.machines),
        "--seed",
        str(opts.seed),
        "--speed",
        str(opts.speed),
        "--sim-hours",
        "1000000",
        "--qos",
        "1",
        "--mqtt-url",
        mqtt_url,
        "--summary",
        str(summary),
        "--commands",
        "--no-progress",
    ]
    state = summary.parent / SIMULATOR_STATE
    args += ["--state", str(state)]
    if state.exists():
        return args  # the saved plant continues exactly (clock, seq, wear, faults, work, orders)
    # No saved plant (first run, or the simulator was killed): continue after the newest message
    # the plant sent (seq > 0; an alert resolution's own record has a negative seq).
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "select max(ts), max(seq) from (select ts, seq from readings"
            " union all select ts, seq from machine_events where seq > 0) s"
        ).fetchone()
    if row is not None and row[0] is not None:
        resume_at = (row[0] + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
        args += ["--start", resume_at.isoformat(), "--seq-base", str(int(row[1]) + 1)]
    return args


def _bootstrap_models(sup: Supervisor, opts: DemoOptions) -> None:
    """Train the first champion on simulated history unless the registry already has one."""
    child = sup.start(
        "bootstrap",
        forewarn_command(
            "train",
            "--if-missing",
            "--simulate-days",
            str(opts.bootstrap_days),
            "--machines",
            str(opts.bootstrap_machines),
            "--seed",
            str(opts.seed + 1000),
        ),
    )
    code = child.proc.wait()
    if code != 0:
        raise RuntimeError(f"model bootstrap failed (exit {code}); see {child.log_path}")


def _announce(opts: DemoOptions, api_port: int, dash_port: int, key: str, logs: Path) -> None:
    if opts.headless:
        log.info("headless demo: API on http://127.0.0.1:%d, logs in %s", api_port, logs)
        return
    from rich.console import Console

    Console(stderr=True).print(
        f"\n[bold]Forewarn demo[/bold]\n"
        f"  dashboard  http://127.0.0.1:{dash_port}\n"
        f"  API        http://127.0.0.1:{api_port}/docs\n"
        f"  API key    {key}   (admin; shown once)\n"
        f"  logs       {logs}\n"
        "Ctrl-C stops everything.\n"
    )


def _watch(sup: Supervisor, db_url: str, opts: DemoOptions) -> None:
    """Show live progress until Ctrl-C, the headless duration, or a service dying."""
    from rich.live import Live
    from rich.table import Table

    deadline = None if opts.duration_s is None else time.monotonic() + opts.duration_s
    interrupted = False
    warned: set[str] = set()

    def on_sigint(*_: object) -> None:
        nonlocal interrupted
        interrupted = True

    previous_int = signal.signal(signal.SIGINT, on_sigint)
    previous_term = signal.signal(signal.SIGTERM, on_sigint)
    try:
        with Live(refresh_per_second=2, transient=opts.headless) as live:
            while not interrupted and (deadline is None or time.monotonic() < deadline):
                for c in sup.dead():
                    if c.name in ONE_SHOT and c.proc.returncode != 0 and c.name not in warned:
                        log.warning(
                            "%s failed (exit %s); see %s", c.name, c.proc.returncode, c.log_path
                        )
                        warned.add(c.name)
                dead = [c for c in sup.dead() if c.name not in ONE_SHOT]
                if dead:
                    raise RuntimeError(
                        f"{dead[0].name} exited with {dead[0].proc.returncode}; see {dead[0].log_path}"
                    )
                table = Table(title="Forewarn demo (Ctrl-C to stop)")
                for k, v in counts(db_url).items():
                    table.add_row(k, f"{v:,}")
                live.update(table)
                time.sleep(PROGRESS_INTERVAL_S)
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)


def _stop_simulator(sup: Supervisor, sim: Child, summary_path: Path) -> dict[str, int]:
    sup.stop(sim)
    if not summary_path.exists():
        raise RuntimeError(f"the simulator wrote no summary; see {sim.log_path}")
    summary = json.loads(summary_path.read_text())
    return {
        "messages": int(summary["telemetry"]) + int(summary["events"]),
        "failures": int(summary["failures"]),
    }


def _ready(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - our own loopback endpoint
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _stored(url: str) -> int:
    c = counts(url)
    return c["readings"] + c["events"]


def _api_alert_count(port: int, key: str) -> int:
    """How many alerts a maintenance system sees through the API (proves the API end of the loop)."""
    import httpx

    try:
        r = httpx.get(
            f"http://127.0.0.1:{port}/v1/alerts/changes",
            params={"limit": 1000},
            headers={"X-API-Key": key},
            timeout=10,
        )
        r.raise_for_status()
        return len(r.json()["alerts"])
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        log.warning("API alert poll failed: %s", exc)
        return -1

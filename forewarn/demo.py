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
import os
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
from forewarn.storage.maintenance import readings_removed
from forewarn.storage.readings import last_plant_message, pipeline_counts
from forewarn.supervisor import Child, ServiceFailed, Supervisor, forewarn_command, wait_until

log = logging.getLogger(__name__)

ONE_SHOT = ("bootstrap", "backtest")  # children expected to finish on their own
# Enough simulated history (30 machines x 120 days, about 300 failures, 60 days scored out of
# sample) that the ROI page's out-of-sample figures are representative, not the noise of a few
# failures; it runs in the background (minutes) and the ROI page says so until it is stored.
BACKTEST_ARGS = (
    "backtest",
    "--simulate",
    "--machines",
    "30",
    "--sim-days",
    "120",
    "--save",
    "--no-curve",
)
BACKTEST_PROGRESS = "backtest.progress.json"  # in {state_dir}/run: the ROI page shows it
INGEST_READY_TIMEOUT_S = 120.0
API_READY_TIMEOUT_S = 180.0  # a loaded 2-core machine starts uvicorn slowly
ORDERS_WAIT_PLANT_H = 40.0  # plant hours the plant may take to answer the last orders (repairs)
CLOSE_WAIT_S = 20.0  # for the alert engine to close alerts on failures in the last messages
DEAD_LETTER_MAX_SHARE = 0.02  # more dead letters than this share of published messages fails a run
# Ingest drains the broker's backlog after the plant stops: waited for while it makes progress
# (a loaded 2-core machine can lag the publisher by minutes), given up after a stall this long.
DRAIN_STALL_S = 90.0
DRAIN_MAX_S = 1800.0
PROGRESS_INTERVAL_S = 0.5
DEMO_RETENTION_DAYS = 7
DEMO_HOUR_ROLLUP_DAYS = 60
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
    crew: bool = False  # a simulated maintenance crew acts on alerts through the API


def free_port() -> int:
    """A TCP port free on loopback right now (embedded servers never assume 1883/5432/8000)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def counts(url: str) -> dict[str, int]:
    """Rows that show the pipeline working: readings, events, dead letters, predictions, alerts."""
    with psycopg.connect(url, autocommit=True) as conn:
        out = pipeline_counts(conn)
        # readings ever stored = in the table + removed by retention (which the demo runs)
        out["readings"] += readings_removed(conn)
    return out


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


def run_demo(settings: Settings, opts: DemoOptions) -> dict[str, Any]:
    """Run the demo and return its summary (``problems`` lists why it failed, if it did)."""
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
) -> dict[str, Any]:
    from forewarn.factory import load_factory
    from forewarn.storage.assets import upsert_registry
    from forewarn.storage.keys import create_key

    factory = load_factory(settings.factory, machines=opts.machines)
    with psycopg.connect(db_url) as conn:
        upsert_registry(conn, factory.registry())
        conn.commit()
    env = _child_env(settings, opts, db_url, mqtt_url)
    logs = settings.state_dir / "logs"
    saved = load_access(settings.state_dir)
    # the same ports as last run when they are still free: bookmarks keep working
    api_port = opts.api_port or _reuse_port(saved.get("api_port"))
    dash_port = opts.dashboard_port or _reuse_port(saved.get("dashboard_port"))
    summary_path = settings.state_dir / "simulator-summary.json"
    summary_path.unlink(missing_ok=True)

    from forewarn.storage import loop

    run_dir = settings.state_dir / "run"
    with Supervisor(env=env, log_dir=logs, run_dir=run_dir) as sup:
        _bootstrap_models(sup, opts, run_dir)
        with psycopg.connect(db_url) as conn:
            access, fresh = ensure_access(conn, saved, api_port, dash_port)
            key = access["api_key"]
            crew_key = create_key(conn, name=f"demo-crew-{time.time_ns()}", role="maintenance")
            mark = loop.run_mark(conn)
            conn.commit()
        # saved as soon as committed: a run stopped before its services are up keeps them too
        save_access(settings.state_dir, access)
        before = counts(db_url)  # a resumed demo counts only what this run published
        ingest = sup.start("ingest", forewarn_command("ingest"), restart=True)
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
        for name, argv in (
            ("scoring", ("score", "--loop")),
            ("alerts", ("alerts", "run")),
            ("maintain", ("maintain", "--every", "30")),  # roll-ups, retention
            ("api", ("api", "--port", str(api_port))),
        ):
            sup.start(name, forewarn_command(*argv), restart=True)
        api_url = f"http://127.0.0.1:{api_port}"
        if not wait_until(lambda: _ready(f"{api_url}/v1/health"), API_READY_TIMEOUT_S):
            raise RuntimeError(f"the API was not up in {API_READY_TIMEOUT_S:.0f}s; see {logs}")
        crew = None
        if opts.crew:
            crew = _start_crew(sup, opts, api_url, crew_key, run_dir)
        if not opts.headless:
            sup.start(
                "dashboard", forewarn_command("dashboard", "--port", str(dash_port)), restart=True
            )
            # A backtest on simulated history, so the ROI page has figures before the live
            # ledger has any (one-shot; it stores its result in this database).
            sup.start(
                "backtest",
                forewarn_command(
                    *BACKTEST_ARGS,
                    "--seed",
                    str(opts.seed + 2000),
                    "--progress-file",
                    str(run_dir / BACKTEST_PROGRESS),
                ),
            )
        sim_args = _simulator_args(db_url, opts, mqtt_url, summary_path, settings.mqtt.topic_root)
        sim = sup.start("simulator", forewarn_command(*sim_args))
        _resend_orders(settings, db_url, mqtt_url, before["readings"])
        _announce(opts, api_port, dash_port, access if fresh else None, logs, db_url)
        _watch(sup, db_url, opts, _PlantHold(sup, ready_url))
        if crew is not None:  # the crew stops first; the plant answers the orders it sent
            sup.stop(crew)
            _await_orders(db_url, mark, opts)
        published = _stop_simulator(sup, sim, summary_path)
        stored_before = before["readings"] + before["events"]
        if not _drain(db_url, stored_before + published["messages"]):
            log.warning(
                "ingest stopped storing (no progress for %.0fs) before every published message",
                DRAIN_STALL_S,
            )
        # the alert engine closes alerts on failures among the last messages stored
        wait_until(lambda: _open_on_failed(db_url) == 0, CLOSE_WAIT_S, interval_s=0.5)
        final = counts(db_url)
        api_sees_alerts = _api_alert_count(api_port, key)
        with psycopg.connect(db_url, autocommit=True) as conn:
            loop_keys = loop.loop_summary(conn, mark)
        restarts = sup.restarts
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
        **loop_keys,
        "restarts": restarts,
        "resumed": bool(published["resumed"]) or stored_before > 0,
        "clock": [published["clock_start"], published["clock_end"]],
        "seconds": round(time.monotonic() - started, 1),
    }
    result["problems"] = problems(result)
    for p in result["problems"]:
        log.error("demo problem: %s", p)
    return result


def problems(result: dict[str, Any]) -> list[str]:
    """Why a run failed (empty when it did not): lost messages, too many dead letters."""
    out = []
    if result["lost"] > 0:
        out.append(
            f"{result['lost']} of {result['published']} published messages were not stored"
            " (see logs/ingest.log)"
        )
    if (
        result["published"] > 0
        and result["dead_lettered"] > DEAD_LETTER_MAX_SHARE * result["published"]
    ):
        out.append(
            f"{result['dead_lettered']} of {result['published']} messages were dead-lettered"
            f" (more than {DEAD_LETTER_MAX_SHARE:.0%}); the dead_letters table holds each"
            " one's reason"
        )
    if result["published"] == 0:
        out.append("the simulator published nothing (see logs/simulator.log)")
    return out


def _start_crew(sup: Supervisor, opts: DemoOptions, api_url: str, key: str, run_dir: Path) -> Child:
    run_dir.mkdir(parents=True, exist_ok=True)
    key_file = run_dir / "crew.key"
    key_file.touch(mode=0o600)
    key_file.write_text(key + "\n", encoding="utf-8")
    argv = forewarn_command(
        "crew",
        "--api-url",
        api_url,
        "--key-file",
        str(key_file),
        "--machines",
        str(opts.machines),
        "--speed",
        str(opts.speed),
        "--seed",
        str(opts.seed),
    )
    return sup.start("crew", argv, restart=True)


def _resend_orders(settings: Settings, db_url: str, mqtt_url: str, readings_before: int) -> None:
    """Send again the maintenance orders no plant event answered (resolved while the plant was
    stopped, e.g. with `forewarn alerts resolve` between two demos), once the plant is publishing
    (so its command subscription exists)."""
    from forewarn.orders import command_payload, command_topic, mqtt_publisher
    from forewarn.storage import loop

    with psycopg.connect(db_url, autocommit=True) as conn:
        pending = loop.unanswered_orders(conn)
    if not pending:
        return
    if not wait_until(lambda: counts(db_url)["readings"] > readings_before, INGEST_READY_TIMEOUT_S):
        log.warning("the plant did not start publishing; %d orders not sent again", len(pending))
        return
    mqtt = settings.mqtt.model_copy(update={"url": mqtt_url})
    publish, close = mqtt_publisher(settings.model_copy(update={"mqtt": mqtt}), name="demo-orders")
    try:
        for o in pending:
            topic = command_topic(o["site_id"], o["machine_id"], settings.mqtt.topic_root)
            publish(topic, command_payload(o["action"], int(o["alert_id"])))
    finally:
        close()
    log.info("sent %d unanswered maintenance orders to the plant again", len(pending))


def _await_orders(db_url: str, mark: dict[str, int], opts: DemoOptions) -> None:
    """Wait (bounded) until the plant has answered every maintenance order of this run."""
    from forewarn.storage import loop

    def answered() -> bool:
        with psycopg.connect(db_url, autocommit=True) as conn:
            sent, obeyed = loop.orders(conn, mark)
        return obeyed >= sent

    timeout = max(10.0, ORDERS_WAIT_PLANT_H * 3600.0 / opts.speed)
    if not wait_until(answered, timeout, interval_s=0.5):
        log.warning("the plant did not answer every maintenance order within %.0fs", timeout)


def _drain(db_url: str, target: int) -> bool:
    """Wait until ``target`` plant messages are stored, as long as ingest makes progress."""
    started = last_move = time.monotonic()
    last = _stored(db_url)
    while last < target:
        now = time.monotonic()
        if now - last_move > DRAIN_STALL_S or now - started > DRAIN_MAX_S:
            return False
        time.sleep(0.5)
        stored = _stored(db_url)
        if stored > last:
            last, last_move = stored, time.monotonic()
    return True


def _open_on_failed(db_url: str) -> int:
    from forewarn.storage import loop

    with psycopg.connect(db_url, autocommit=True) as conn:
        return loop.open_alerts_on_failed_machines(conn)


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
        # Plant-time retention for an accelerated plant (one simulated hour per second): a week of
        # raw readings and minute roll-ups, two months of hour roll-ups, so an hour of the demo
        # stays well under 1 GB on disk. A value set in the environment wins.
        "FOREWARN_DB__RETENTION_DAYS": os.environ.get(
            "FOREWARN_DB__RETENTION_DAYS", str(DEMO_RETENTION_DAYS)
        ),
        "FOREWARN_DB__HOUR_ROLLUP_RETENTION_DAYS": os.environ.get(
            "FOREWARN_DB__HOUR_ROLLUP_RETENTION_DAYS", str(DEMO_HOUR_ROLLUP_DAYS)
        ),
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
        row = last_plant_message(conn)
    if row is not None:
        resume_at = (row[0] + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
        args += ["--start", resume_at.isoformat(), "--seq-base", str(row[1] + 1)]
    return args


def _bootstrap_models(sup: Supervisor, opts: DemoOptions, run_dir: Path) -> None:
    """Train the first champion on simulated history unless the registry already has one.

    The training child writes its progress to a file; a progress bar here shows it.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    run_dir.mkdir(parents=True, exist_ok=True)
    progress_file = run_dir / "bootstrap.progress.json"
    progress_file.unlink(missing_ok=True)
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
            "--progress-file",
            str(progress_file),
        ),
    )
    with Progress(
        TextColumn("first models: {task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}"),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=1)
        while child.alive:
            state = _read_json(progress_file)
            if state:
                bar.update(
                    task, completed=state["done"], total=state["total"], description=state["stage"]
                )
            time.sleep(0.25)
    code = sup.stop(child)  # exited already; this reaps it and removes its pid file
    if code != 0:
        raise RuntimeError(f"model bootstrap failed (exit {code}); see {child.log_path}")


def psql_command(db_url: str) -> str:
    """A psql command line that connects to the demo's database."""
    import shlex

    return f"psql {shlex.quote(db_url)}"


def _announce(
    opts: DemoOptions,
    api_port: int,
    dash_port: int,
    fresh: dict[str, Any] | None,
    logs: Path,
    db_url: str,
) -> None:
    if opts.headless:
        log.info(
            "headless demo: API on http://127.0.0.1:%d, logs in %s, database: %s",
            api_port,
            logs,
            psql_command(db_url),
        )
        return
    from rich.console import Console

    if fresh is not None:
        who = (
            f"  log in     {fresh['admin_email']} / {fresh['admin_password']}   (admin; shown once)\n"
            f"  API key    {fresh['api_key']}   (admin; shown once)\n"
        )
    else:
        who = "  log in     as before; `forewarn demo --credentials` shows the admin log-in again\n"
    Console(stderr=True).print(
        f"\n[bold]Forewarn demo[/bold]\n"
        f"  dashboard  http://127.0.0.1:{dash_port}\n"
        f"  API        http://127.0.0.1:{api_port}/docs\n"
        + who
        + f"  database   {psql_command(db_url)}\n"
        f"  logs       {logs}\n"
        + (
            "  crew       a simulated maintenance crew acts on alerts through the API\n"
            if opts.crew
            else ""
        )
        + "Ctrl-C stops everything.\n"
    )


ACCESS_FILE = "demo-access.json"
DEMO_ADMIN = ("Demo Admin", "admin@forewarn.demo")


def load_access(state_dir: Path) -> dict[str, Any]:
    """The demo's saved ports and admin credentials ({} before the first run)."""
    path = state_dir / ACCESS_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data


def save_access(state_dir: Path, access: dict[str, Any]) -> None:
    """Write the access file readable by its owner only (it holds the demo admin's secrets)."""
    path = state_dir / ACCESS_FILE
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(json.dumps(access, indent=2) + "\n")


def _reuse_port(port: int | None) -> int:
    """``port`` when a server could listen on it now, else a free port.

    The probe binds as uvicorn and Streamlit (tornado) do, with SO_REUSEADDR: the last run's
    servers closed their connections first, so the port is still held by sockets in TIME_WAIT for a
    minute, which refuse a plain bind but not a server's. Without it an immediate rerun moved the
    API to a new port. A port some process still listens on is refused either way.
    """
    if port:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", int(port)))
            except OSError:
                return free_port()
            return int(port)
    return free_port()


def ensure_access(
    conn: psycopg.Connection, saved: dict[str, Any], api_port: int, dash_port: int
) -> tuple[dict[str, Any], bool]:
    """The demo admin's account and API key, kept across runs; (access, created now)."""
    import secrets

    from forewarn.storage.keys import create_key, lookup_key
    from forewarn.storage.people import create_user, get_user_by_email, set_password

    fresh = False
    key = saved.get("api_key")
    if not key or lookup_key(conn, key) is None:
        key = create_key(conn, name=f"demo-{time.time_ns()}", role="admin")
        fresh = True
    password = saved.get("admin_password")
    person = get_user_by_email(conn, DEMO_ADMIN[1])
    if person is None:
        password = secrets.token_urlsafe(12)
        create_user(conn, name=DEMO_ADMIN[0], email=DEMO_ADMIN[1], role="admin",
                    password=password, actor="demo")  # fmt: skip
        fresh = True
    elif not password:  # the access file was lost: a new password, shown once
        password = secrets.token_urlsafe(12)
        set_password(conn, person.id, password)
        fresh = True
    access = {
        "dashboard_url": f"http://127.0.0.1:{dash_port}",
        "api_url": f"http://127.0.0.1:{api_port}",
        "api_port": api_port,
        "dashboard_port": dash_port,
        "admin_email": DEMO_ADMIN[1],
        "admin_password": password,
        "api_key": key,
    }
    return access, fresh


class _PlantHold:
    """Holds the simulated plant (SIGSTOP) while ingest is down and restarting, resumes it
    (SIGCONT) once ingest is ready again.

    A broker keeps a bounded queue for an absent subscriber (Debian's Mosquitto: 1,000 QoS 1
    messages, then it drops silently); the demo's plant publishes hundreds of messages a second,
    so an ingest restart of a few seconds would overflow a broker configured that way. Holding
    our own simulated plant keeps what the broker must queue small.
    """

    def __init__(self, sup: Supervisor, ready_url: str) -> None:
        self.sup, self.ready_url, self.held = sup, ready_url, False

    def check(self) -> None:
        ingest = next((c for c in self.sup.children if c.name == "ingest"), None)
        sim = next((c for c in self.sup.children if c.name == "simulator"), None)
        if ingest is None or sim is None or not sim.alive:
            return
        if not self.held and not ingest.alive:
            _signal_plant(sim, signal.SIGSTOP)
            self.held = True
            log.warning("ingest is down: holding the simulated plant until it is back")
        elif self.held and ingest.alive and _ready(self.ready_url):
            _signal_plant(sim, signal.SIGCONT)
            self.held = False
            log.warning("ingest is back: the simulated plant continues")

    def release(self) -> None:
        sim = next((c for c in self.sup.children if c.name == "simulator"), None)
        if self.held and sim is not None:
            _signal_plant(sim, signal.SIGCONT)
            self.held = False


def _signal_plant(sim: Child, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(sim.proc.pid, sig)


def _watch(sup: Supervisor, db_url: str, opts: DemoOptions, hold: _PlantHold) -> None:
    """Show live progress until Ctrl-C, the headless duration, or a service failing for good."""
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
                hold.check()
                sup.heal()  # restarts crashed services; raises ServiceFailed when one keeps crashing
                hold.check()
                dead = [c for c in sup.dead() if c.name not in ONE_SHOT and not c.restart]
                if dead:
                    raise ServiceFailed(dead[0], "exited")
                table = Table(title="Forewarn demo (Ctrl-C to stop)")
                for k, v in counts(db_url).items():
                    table.add_row(k, f"{v:,}")
                live.update(table)
                time.sleep(PROGRESS_INTERVAL_S if not hold.held else 0.2)
    finally:
        hold.release()
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)


def _stop_simulator(sup: Supervisor, sim: Child, summary_path: Path) -> dict[str, Any]:
    sup.stop(sim)
    if not summary_path.exists():
        raise RuntimeError(f"the simulator wrote no summary; see {sim.log_path}")
    summary = json.loads(summary_path.read_text())
    return {
        "messages": int(summary["telemetry"]) + int(summary["events"]),
        "failures": int(summary["failures"]),
        "resumed": bool(summary.get("resumed", False)),
        "clock_start": str(summary.get("clock_start", "")),
        "clock_end": str(summary.get("clock_end", "")),
    }


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


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

"""Run Forewarn services as child processes and stop every one of them, whatever happens.

Used by `forewarn demo` (and the chaos run): each service is a `forewarn <command>` process with the
same environment, so the demo exercises exactly the code a deployment runs.

Healing: a child started with ``restart=True`` that exits is started again by :meth:`Supervisor.heal`
after a backoff (RESTART_BACKOFF_S doubling to RESTART_BACKOFF_MAX_S), and logged. More than
MAX_RESTARTS restarts of one child within RESTART_WINDOW_S raise :class:`ServiceFailed` with the
child's last log lines; the caller stops everything and exits non-zero. Each child's pid is in
``run_dir/{name}.pid`` while it runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 20.0
RESTART_BACKOFF_S = 0.5
RESTART_BACKOFF_MAX_S = 15.0
MAX_RESTARTS = 5  # within RESTART_WINDOW_S; one more crash stops everything
RESTART_WINDOW_S = 120.0
TAIL_LINES = 20


class ServiceFailed(RuntimeError):
    """A supervised service kept crashing (or a service that is not restarted exited)."""

    def __init__(self, child: Child, reason: str) -> None:
        self.child = child
        self.tail = tail(child.log_path)
        lines = "\n".join(f"  | {line}" for line in self.tail)
        super().__init__(
            f"{child.name} {reason} (exit {child.proc.returncode}); see {child.log_path}"
            + (f"\nlast lines of its log:\n{lines}" if lines else "")
        )


def tail(path: Path | None, n: int = TAIL_LINES) -> list[str]:
    """The last ``n`` lines of a log file ([] when there is none)."""
    if path is None or not path.exists():
        return []
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 64 * 1024))
        text = f.read().decode("utf-8", "replace")
    return text.splitlines()[-n:]


def forewarn_command(*args: str) -> list[str]:
    """Argv that runs the `forewarn` CLI with this interpreter (no reliance on PATH)."""
    return [sys.executable, "-m", "forewarn", *args]


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes]
    log_path: Path | None
    _log_file: IO[bytes] | None = field(default=None, repr=False)
    restart: bool = False
    capture: bool = False
    crashes: list[float] = field(default_factory=list)  # monotonic times of unexpected exits
    restart_at: float | None = None  # when a crashed child is due to start again

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class Supervisor:
    """Starts children in their own process groups, restarts crashed ones, stops them all."""

    env: Mapping[str, str]
    log_dir: Path
    children: list[Child] = field(default_factory=list)
    run_dir: Path | None = None  # pid files go here ({name}.pid)
    restarts: int = 0  # children started again after a crash

    def start(
        self, name: str, argv: Sequence[str], *, capture: bool = False, restart: bool = False
    ) -> Child:
        """Start ``argv``; its output goes to ``log_dir/name.log`` (or a pipe with capture=True).

        ``restart=True``: :meth:`heal` starts it again when it exits.
        """
        child = Child(name, list(argv), *self._spawn(name, argv, capture))
        child.restart, child.capture = restart, capture
        self.children.append(child)
        return child

    def _spawn(
        self, name: str, argv: Sequence[str], capture: bool
    ) -> tuple[subprocess.Popen[bytes], Path, IO[bytes] | None]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        out: IO[bytes] | int
        if capture:
            out, log_file = subprocess.PIPE, None
        else:
            log_file = log_path.open("ab")
            out = log_file
        proc = subprocess.Popen(
            list(argv),
            env={**os.environ, **self.env},
            stdout=out,
            stderr=log_file if log_file is not None else subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own group: Ctrl-C reaches us, we stop it in order
        )
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            _write_atomic(self.run_dir / f"{name}.pid", f"{proc.pid}\n")
        log.info("started %s (pid %d): %s", name, proc.pid, " ".join(argv))
        return proc, log_path, log_file

    def pid_file(self, name: str) -> Path | None:
        return None if self.run_dir is None else self.run_dir / f"{name}.pid"

    def dead(self) -> list[Child]:
        """Children that exited on their own."""
        return [c for c in self.children if not c.alive]

    def heal(self, now: float | None = None) -> list[Child]:
        """Restart children with ``restart=True`` that exited, after a backoff; returns those
        restarted now. Raises ServiceFailed when one crashed too often."""
        now = time.monotonic() if now is None else now
        started = []
        for child in self.children:
            if not child.restart or child.alive:
                continue
            if child.restart_at is None:  # a new crash
                child.crashes = [t for t in child.crashes if now - t < RESTART_WINDOW_S]
                child.crashes.append(now)
                if len(child.crashes) > MAX_RESTARTS:
                    raise ServiceFailed(
                        child, f"crashed {len(child.crashes)} times in {RESTART_WINDOW_S:.0f}s"
                    )
                backoff = min(
                    RESTART_BACKOFF_MAX_S, RESTART_BACKOFF_S * 2 ** (len(child.crashes) - 1)
                )
                child.restart_at = now + backoff
                log.warning(
                    "%s exited with %s; restarting it in %.1fs (crash %d of at most %d in %.0fs)",
                    child.name,
                    child.proc.returncode,
                    backoff,
                    len(child.crashes),
                    MAX_RESTARTS,
                    RESTART_WINDOW_S,
                )
            if now >= child.restart_at:
                if child._log_file is not None:
                    child._log_file.close()
                child.proc, child.log_path, child._log_file = self._spawn(
                    child.name, child.argv, child.capture
                )
                child.restart_at = None
                self.restarts += 1
                log.warning("restarted %s (pid %d)", child.name, child.proc.pid)
                started.append(child)
        return started

    def stop(self, child: Child, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM the child's process group, wait, SIGKILL if needed; return its exit code."""
        child.restart = False  # stopped on purpose: not healed
        if child.alive:
            _signal_group(child.proc.pid, signal.SIGTERM)
            try:
                child.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs; killing it", child.name, timeout_s)
        # Kill the group even if the leader exited: a grandchild (e.g. a browser) may remain.
        _signal_group(child.proc.pid, signal.SIGKILL)
        code = child.proc.wait()
        if child._log_file is not None:
            child._log_file.close()
        pid_file = self.pid_file(child.name)
        if (
            pid_file is not None
            and pid_file.exists()
            and pid_file.read_text().strip() == str(child.proc.pid)
        ):
            pid_file.unlink(missing_ok=True)
        return code

    def stop_all(self) -> None:
        """Stop every child, newest first (consumers before the things they consume)."""
        for child in reversed(self.children):
            self.stop(child)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group is already gone
        os.killpg(pid, sig)


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
    """Poll ``predicate()`` until true or the timeout passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return False

"""Run Forewarn services as child processes and stop every one of them, whatever happens.

Used by `forewarn demo` (and the chaos run): each service is a `forewarn <command>` process with the
same environment, so the demo exercises exactly the code a deployment runs.
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

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class Supervisor:
    """Starts children in their own process groups and stops them (SIGTERM, then SIGKILL)."""

    env: Mapping[str, str]
    log_dir: Path
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], *, capture: bool = False) -> Child:
        """Start ``argv``; its output goes to ``log_dir/name.log`` (or a pipe with capture=True)."""
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
        child = Child(name, list(argv), proc, log_path, log_file)
        self.children.append(child)
        log.info("started %s (pid %d): %s", name, proc.pid, " ".join(argv))
        return child

    def dead(self) -> list[Child]:
        """Children that exited on their own."""
        return [c for c in self.children if not c.alive]

    def stop(self, child: Child, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM the child's process group, wait, SIGKILL if needed; return its exit code."""
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
        return code

    def stop_all(self) -> None:
        """Stop every child, newest first (consumers before the things they consume)."""
        for child in reversed(self.children):
            self.stop(child)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


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

from __future__ import annotations

import os
import sys
from pathlib import Path

from forewarn.supervisor import Supervisor, wait_until

# A child that ignores SIGTERM and leaves a grandchild behind: the worst case for a clean stop.
STUBBORN = (
    "import os, signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "open(sys.argv[1], 'w').write(str(p.pid))\n"
    "time.sleep(600)\n"
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); read its state
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def test_stop_all_leaves_no_process_behind(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    with Supervisor(env={}, log_dir=tmp_path) as sup:
        child = sup.start("stubborn", [sys.executable, "-c", STUBBORN, str(pid_file)])
        assert wait_until(lambda: pid_file.exists() and pid_file.read_text() != "", 10)
        grandchild = int(pid_file.read_text())
        assert child.alive and _alive(grandchild)
        code = sup.stop(child, timeout_s=0.5)
    assert code != 0
    assert not child.alive
    assert wait_until(lambda: not _alive(grandchild), 5)


def test_dead_children_are_reported(tmp_path: Path) -> None:
    with Supervisor(env={"FOREWARN_X": "1"}, log_dir=tmp_path) as sup:
        child = sup.start(
            "quick", [sys.executable, "-c", "import os; print(os.environ['FOREWARN_X'])"]
        )
        assert wait_until(lambda: not child.alive, 10)
        assert sup.dead() == [child]
    assert (tmp_path / "quick.log").read_text().strip() == "1"


def test_a_crashed_service_is_restarted_then_given_up_with_its_last_log_lines(
    tmp_path: Path,
) -> None:
    from forewarn.supervisor import MAX_RESTARTS, ServiceFailed

    crash = "import sys; print('boom: disk on fire', flush=True); sys.exit(3)"
    with Supervisor(env={}, log_dir=tmp_path, run_dir=tmp_path / "run") as sup:
        child = sup.start("flaky", [sys.executable, "-c", crash], restart=True)
        pid_file = tmp_path / "run" / "flaky.pid"
        assert int(pid_file.read_text()) == child.proc.pid
        clock = 1000.0
        for n in range(1, MAX_RESTARTS + 1):
            assert wait_until(lambda: not child.alive, 10)
            assert sup.heal(clock) == []  # crash noted, restart after a backoff
            clock += 60.0  # past the backoff (fake time; the window is 120 s so crashes add up)
            assert sup.heal(clock) == [child] and sup.restarts == n
            assert int(pid_file.read_text()) == child.proc.pid  # the new pid
            clock -= 59.0  # keep every crash inside the window
        assert wait_until(lambda: not child.alive, 10)
        try:
            sup.heal(clock)
        except ServiceFailed as exc:
            assert "flaky crashed" in str(exc) and "exit 3" in str(exc)
            assert exc.tail[-1] == "boom: disk on fire"
        else:
            raise AssertionError("a service crashing this often must stop the supervisor")
    assert not pid_file.exists()

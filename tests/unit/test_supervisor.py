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

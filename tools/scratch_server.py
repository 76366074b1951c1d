"""A throwaway PostgreSQL cluster from an installed server's binaries, without preloaded libraries.

Why: once a server preloads TimescaleDB, Forewarn's migrate creates the extension in every database
it migrates there, so that server can no longer stand for plain PostgreSQL. The test matrix and the
benchmark start a cluster of their own from the same binaries instead: same major version, no
TimescaleDB. Unix socket only (no port to collide on), removed on exit. As root, the cluster runs
as the ``postgres`` system user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from forewarn.errors import StorageUnavailable

log = logging.getLogger(__name__)

RUN_AS = "postgres"  # system user owning the cluster when we are root
SOCKET_PORT = 5432  # only names the socket file in the cluster's private directory
START_TIMEOUT_S = 60


def _as_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", RUN_AS, "--", *cmd]


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(_as_user(cmd), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise StorageUnavailable(
            f"{Path(cmd[0]).name} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}"
        )


@contextmanager
def scratch_postgres(bin_dir: Path, settings: Mapping[str, str] | None = None) -> Iterator[str]:
    """Start a new cluster with ``bin_dir``'s initdb/pg_ctl; yield its URL; stop and delete it.

    ``settings`` become ``-c name=value`` options (e.g. ``{"fsync": "off"}`` for tests).
    Raises StorageUnavailable when the cluster cannot be created or started.
    """
    root = Path(tempfile.mkdtemp(prefix="fw-pg-"))  # short: socket paths are limited to ~100 bytes
    data = root / "data"
    user = RUN_AS if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        entry = pwd.getpwnam(RUN_AS)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    options = {
        "listen_addresses": "''",
        "unix_socket_directories": f"'{root}'",
        "port": str(SOCKET_PORT),
        "shared_preload_libraries": "''",
        **(settings or {}),
    }
    opts = " ".join(f"-c {k}={v}" for k, v in options.items())
    started = False
    try:
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                user,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ]
        )
        _run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                opts,
                "-l",
                str(root / "log"),
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "start",
            ]
        )
        started = True
        log.info("scratch PostgreSQL from %s at %s", bin_dir, root)
        yield f"postgresql:///postgres?host={quote(str(root))}&port={SOCKET_PORT}&user={user}"
    finally:
        if started:
            _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)

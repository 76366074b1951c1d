"""The local MQTT broker behind the embedded defaults (no ``FOREWARN_MQTT__URL``).

:func:`local_broker` starts ``mosquitto`` from PATH (or /usr/sbin) in its own process with a
generated config: loopback only, a free port chosen here, anonymous access, persistence in
``state_dir/mosquitto`` and no per-client queue or in-flight limits (Debian's defaults of 1000
queued / 20 in flight silently drop QoS 1 messages for a slow subscriber). Without mosquitto it
starts the pure-Python amqtt broker, also in its own process (``python -m forewarn.broker``).

amqtt (0.12) speaks MQTT 3.1.1 only and keeps sessions in memory only (lost when it stops). It
queues QoS 1 messages for an offline persistent session only if the session is not anonymous,
and with ``allow_anonymous: true`` every session counts as anonymous: offline messages were
silently dropped. So the amqtt broker runs with anonymous access off and the URL it yields
carries a user name (no password is checked): ``mqtt://forewarn@127.0.0.1:PORT?protocol=3.1.1``.
Clients must pass the URL's user name. See tests/integration/test_broker.py.
"""

from __future__ import annotations

import getpass
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from forewarn.errors import ConfigError

log = logging.getLogger(__name__)

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
Kind = Literal["auto", "mosquitto", "amqtt"]
AMQTT_USER = "forewarn"  # amqtt retains offline messages only for sessions with a user name


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary (PATH, then /usr/sbin and /usr/local/sbin), or None."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin"):
        candidate = Path(folder) / "mosquitto"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_config(port: int, data_dir: Path) -> str:
    """The generated mosquitto.conf of the local broker."""
    return "\n".join(
        [
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            f"user {getpass.getuser()}",  # as root, do not switch to the 'mosquitto' user
            "persistence true",
            f"persistence_location {data_dir}/",
            "autosave_interval 60",
            "max_queued_messages 0",
            "max_queued_bytes 0",
            "max_inflight_messages 0",
            "max_packet_size 1048576",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "",
        ]
    )


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(
                "FOREWARN_MQTT__URL",
                f"local broker exited with {proc.returncode}: {log_path.read_text()[-500:]}",
            )
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise ConfigError("FOREWARN_MQTT__URL", f"local broker did not listen on {port}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()  # SIGTERM: mosquitto writes its persistence file and exits
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def local_broker(state_dir: Path, *, kind: Kind = "auto") -> Iterator[str]:
    """Start a loopback broker in its own process and yield its ``mqtt://127.0.0.1:PORT`` URL."""
    mosquitto = find_mosquitto() if kind in ("auto", "mosquitto") else None
    if kind == "mosquitto" and mosquitto is None:
        raise ConfigError("FOREWARN_MQTT__URL", "mosquitto is not installed")
    folder = (state_dir / ("mosquitto" if mosquitto else "amqtt")).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = folder / "broker.log"
    if mosquitto:
        conf = folder / "mosquitto.conf"
        conf.write_text(mosquitto_config(port, folder), encoding="utf-8")
        cmd = [mosquitto, "-c", str(conf)]
        url = f"mqtt://127.0.0.1:{port}"
    else:
        cmd = [sys.executable, "-m", "forewarn.broker", str(port)]
        url = f"mqtt://{AMQTT_USER}@127.0.0.1:{port}?protocol=3.1.1"
    with log_path.open("ab") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=log_file, stdin=subprocess.DEVNULL)
    try:
        _wait_listening(proc, port, log_path)
        log.info("local broker %s on %s (pid %d)", Path(cmd[0]).name, url, proc.pid)
        yield url
    finally:
        _stop(proc)


def _run_amqtt(port: int) -> None:
    """Run the amqtt broker on 127.0.0.1:``port`` until SIGTERM (the child process body).

    Anonymous access off: any client with a user name is accepted (no password check) and, unlike
    an anonymous one, gets its offline QoS 1 messages queued.
    """
    import asyncio
    import signal

    from amqtt.broker import Broker

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False}},
    }

    async def main() -> None:
        broker = Broker(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await broker.start()
        await stop.wait()
        await broker.shutdown()

    asyncio.run(main())


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    _run_amqtt(int(sys.argv[1]))

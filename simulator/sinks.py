"""Where simulated messages go: a JSON-lines file (no broker), or MQTT (see :mod:`simulator.mqtt`).

JSON lines: one ``{"topic": ..., "payload": {...}}`` object per line, the payload being exactly the
bytes that would be published. A malformed message (``--bad-rate``) cannot be embedded as JSON, so
its line is ``{"topic": ..., "payload_b64": "...", "malformed": "<expected reason>"}``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import IO, Any, Protocol


class Sink(Protocol):
    def send(self, topic: str, payload: bytes, malformed: str | None = None) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    """Writes one JSON object per line; byte-identical for identical message streams."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: IO[bytes] = path.open("wb")

    def send(self, topic: str, payload: bytes, malformed: str | None = None) -> None:
        t = json.dumps(topic).encode()
        if malformed is None:
            self._f.write(b'{"topic":' + t + b',"payload":' + payload + b"}\n")
        else:
            b64 = base64.b64encode(payload)
            self._f.write(
                b'{"topic":'
                + t
                + b',"payload_b64":"'
                + b64
                + b'","malformed":"'
                + malformed.encode()
                + b'"}\n'
            )

    def close(self) -> None:
        self._f.close()


def read_jsonl(path: Path) -> list[tuple[str, bytes]]:
    """(topic, payload bytes) per line of a file written by :class:`JsonlSink`."""
    out: list[tuple[str, bytes]] = []
    with path.open("rb") as f:
        for line in f:
            obj: dict[str, Any] = json.loads(line)
            if "payload_b64" in obj:
                out.append((obj["topic"], base64.b64decode(obj["payload_b64"])))
            else:
                out.append(
                    (obj["topic"], json.dumps(obj["payload"], separators=(",", ":")).encode())
                )
    return out


class MemorySink:
    """Keeps (topic, payload) pairs in a list (tests, in-process demos)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, bytes]] = []

    def send(self, topic: str, payload: bytes, malformed: str | None = None) -> None:
        self.items.append((topic, payload))

    def close(self) -> None:
        pass

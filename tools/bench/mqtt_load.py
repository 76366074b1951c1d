"""A lean MQTT 3.1.1 QoS 1 publisher for load generation: pre-framed PUBLISH packets, one write per batch.

Why not paho: in `forewarn bench fleet` on this 2-core machine paho's publish path cost 0.237 CPU-ms per
QoS 1 message (2026-12-07, quiet), 1.2 cores for a 5,000-machine fleet, more than every Forewarn
service together; framing the packets here costs about 0.003 ms (`forewarn bench fleet` reports the
publisher's CPU per 1,000 messages in every run). It is a load generator only: Forewarn's own
services (ingest, the simulator, connectors) keep using paho.

It speaks just what a QoS 1 publisher needs (MQTT 3.1.1, section 3): CONNECT with a clean session and
no keep-alive, PUBLISH with a packet id, and PUBACKs counted as they arrive (each is exactly 4 bytes,
``0x40 0x02 id id``; anything else is a protocol error and raises). At most ``max_inflight``
publishes are unacknowledged, so a packet id (1..65535) is never reused while in flight.
"""

from __future__ import annotations

import socket
import struct
import time

MAX_INFLIGHT = 20_000


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


class RawPublisher:
    """QoS 1 publisher over one TCP connection; ``acked`` counts the broker's PUBACKs."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        max_inflight: int = MAX_INFLIGHT,
    ) -> None:
        if not 0 < max_inflight < 65535:
            raise ValueError("max_inflight must leave packet ids unused while in flight")
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        flags, payload = 0x02, _string(client_id)  # clean session
        if username is not None:
            flags, payload = flags | 0x80, payload + _string(username)
            if password is not None:
                flags, payload = flags | 0x40, payload + _string(password)
        # protocol name, level 4 (3.1.1), flags, keep-alive 0 (off)
        body = b"\x00\x04MQTT\x04" + bytes([flags]) + b"\x00\x00" + payload
        self.sock.sendall(b"\x10" + _remaining_length(len(body)) + body)
        connack = self._read_exactly(4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise ConnectionError(f"broker refused the connection: CONNACK {connack.hex()}")
        self.sock.setblocking(False)
        self.max_inflight = max_inflight
        self.sent = self.acked = 0
        self._pid = 0
        self._pending = bytearray()

    def _read_exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            data += chunk
        return data

    def publish_many(self, messages: list[tuple[bytes, bytes]]) -> None:
        """Frame (topic, payload) pairs as QoS 1 PUBLISH packets and write them in one go."""
        self.wait_inflight(self.max_inflight - len(messages))
        frames = []
        pid = self._pid
        for topic, payload in messages:
            pid = pid % 65535 + 1
            body = b"".join((struct.pack("!H", len(topic)), topic, struct.pack("!H", pid), payload))
            frames.append(b"\x32" + _remaining_length(len(body)) + body)
        self._pid = pid
        self._send(b"".join(frames))
        self.sent += len(messages)
        self.poll_acks()

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = self.sock.send(view)
            except BlockingIOError:
                self.poll_acks()  # the broker may be waiting for us to read its PUBACKs
                time.sleep(0.0005)
                continue
            view = view[n:]

    def poll_acks(self) -> None:
        """Count the PUBACKs that have arrived, without blocking."""
        while True:
            try:
                chunk = self.sock.recv(1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                raise ConnectionError("broker closed the connection")
            self._pending += chunk
        whole = len(self._pending) // 4 * 4
        if whole:
            acks = bytes(self._pending[:whole])
            if acks[::4].strip(b"\x40") or acks[1::4].strip(b"\x02"):
                raise ConnectionError(f"unexpected packet from the broker: {acks[:16].hex()}")
            self.acked += whole // 4
            del self._pending[:whole]

    def wait_inflight(self, at_most: int, timeout_s: float = 60.0) -> bool:
        """Wait until at most ``at_most`` publishes are unacknowledged; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self.sent - self.acked > max(at_most, 0):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
            self.poll_acks()
        return True

    def close(self) -> None:
        try:
            self.sock.setblocking(True)
            self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        except OSError:
            pass
        self.sock.close()

"""Health, readiness and Prometheus metrics over HTTP for every long-running service.

``serve`` answers ``/metrics``, ``/healthz`` (the process is up) and ``/readyz`` (it is doing its
job) from a daemon thread. ``LoopHealth`` is the readiness rule of the periodic services (scoring,
alerts, maintenance): ready while the last pass succeeded recently.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

log = logging.getLogger(__name__)

# Unauthenticated endpoints listen on loopback unless FOREWARN_METRICS_HOST says otherwise.
DEFAULT_HOST = "127.0.0.1"


def serve(
    registry: CollectorRegistry,
    ready: Callable[[], bool],
    port: int,
    host: str = DEFAULT_HOST,
    name: str = "metrics",
) -> ThreadingHTTPServer:
    """Serve /metrics, /healthz and /readyz in a daemon thread; the caller shuts it down."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._reply(200, b"ok\n")
            elif path == "/readyz":
                ok = ready()
                self._reply(200 if ok else 503, b"ready\n" if ok else b"not ready\n")
            else:
                self._reply(404, b"not found\n")

        def _reply(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            log.debug("health http: " + format, *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    log.info("metrics on http://%s:%d/metrics (/healthz, /readyz)", host, server.server_address[1])
    return server


class LoopHealth:
    """Pass counters and the time of the last good pass of one periodic service."""

    def __init__(self, service: str, max_age_s: float) -> None:
        self.max_age_s = max_age_s
        self.registry = CollectorRegistry()
        self.passes = Counter(
            f"forewarn_{service}_passes", "Passes that succeeded", registry=self.registry
        )
        self.failures = Counter(
            f"forewarn_{service}_failures",
            "Passes that failed (database unavailable)",
            registry=self.registry,
        )
        self.items = Counter(
            f"forewarn_{service}_items",
            "Items written (predictions, alerts, rows)",
            registry=self.registry,
        )
        self.last_success = Gauge(
            f"forewarn_{service}_last_success_timestamp_seconds",
            "Unix time of the last successful pass",
            registry=self.registry,
        )
        self._last = 0.0

    def ok(self, items: int = 0) -> None:
        self.passes.inc()
        self.items.inc(items)
        self._last = time.time()
        self.last_success.set(self._last)

    def failed(self) -> None:
        self.failures.inc()

    def ready(self) -> bool:
        return time.time() - self._last <= self.max_age_s

    def serve(self, port: int, host: str = DEFAULT_HOST) -> ThreadingHTTPServer | None:
        """Start the endpoint on ``host:port`` (port 0 = none)."""
        return serve(self.registry, self.ready, port, host, name="health") if port else None

"""Prometheus metrics of one ingest worker, and its HTTP endpoint.

Endpoints on ``settings.ingest.metrics_port`` (0 = no server):
``/metrics`` (Prometheus text format), ``/healthz`` (200 while the process runs: liveness) and
``/readyz`` (200 when connected to the broker, the last database write succeeded and taken
messages are being settled, else 503). They bind ``settings.metrics_host`` (127.0.0.1 by default).
Each worker has its own :class:`~prometheus_client.CollectorRegistry`, so several pipelines can
live in one process (tests, the benchmark) without clashing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from forewarn import health

log = logging.getLogger(__name__)

LAG_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
COMMIT_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000)


class IngestMetrics:
    """The counters, gauges and histograms one worker exports."""

    def __init__(
        self, queue_depth: Callable[[], float], received: Callable[[], dict[str, int]]
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        r.register(_ReceivedCollector(received))
        self.stored = Counter(
            "forewarn_ingest_stored", "Rows committed (new, not duplicates)", ["table"], registry=r
        )
        self.rejected = Counter(
            "forewarn_ingest_rejected",
            "Messages dead-lettered, by reason code",
            ["reason"],
            registry=r,
        )
        self.reordered = Counter(
            "forewarn_ingest_reordered",
            "Readings stored below their machine's newest seq (within the reorder window, flagged)",
            registry=r,
        )
        self.db_errors = Counter(
            "forewarn_ingest_db_errors",
            "Failed database writes (batch kept and retried)",
            registry=r,
        )
        self.batch_size = Histogram(
            "forewarn_ingest_batch_size",
            "Messages per committed batch",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.commit_seconds = Histogram(
            "forewarn_ingest_commit_seconds",
            "Write + commit latency of one batch",
            buckets=COMMIT_BUCKETS_S,
            registry=r,
        )
        self.lag_seconds = Histogram(
            "forewarn_ingest_lag_seconds",
            "End-to-end lag: commit time minus the message's event time",
            buckets=LAG_BUCKETS_S,
            registry=r,
        )
        self.queue_depth = Gauge(
            "forewarn_ingest_queue_depth", "Messages waiting for the writer", registry=r
        )
        self.queue_depth.set_function(queue_depth)
        self.connected = Gauge(
            "forewarn_ingest_broker_connected", "1 while connected to the broker", registry=r
        )
        self.sparkplug_rebirths = Counter(
            "forewarn_ingest_sparkplug_rebirths",
            "Rebirth requests (NCMD) sent to Sparkplug edge nodes: seq gaps, unknown aliases",
            registry=r,
        )
        self.db_ok = Gauge(
            "forewarn_ingest_db_ok", "1 when the last database write succeeded", registry=r
        )

    def ready(self) -> bool:
        """Connected to the broker and the database accepted the last write."""
        return bool(self.connected._value.get()) and bool(self.db_ok._value.get())


class _ReceivedCollector(Collector):
    """``forewarn_ingest_received_total{kind}`` read from plain ints the network thread bumps
    (a labelled Counter's lock per message costs more than the rest of intake's bookkeeping)."""

    def __init__(self, received: Callable[[], dict[str, int]]) -> None:
        self._received = received

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "forewarn_ingest_received",
            "MQTT messages validated and enqueued, by kind",
            labels=["kind"],
        )
        for kind, n in self._received().items():
            family.add_metric([kind], n)
        yield family


def serve(
    metrics: IngestMetrics,
    port: int,
    host: str = health.DEFAULT_HOST,
    ready: Callable[[], bool] | None = None,
) -> ThreadingHTTPServer:
    """Serve /metrics, /healthz and /readyz in a daemon thread; the caller shuts it down."""
    return health.serve(metrics.registry, ready or metrics.ready, port, host, name="ingest-metrics")

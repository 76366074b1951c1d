"""Intake (on the MQTT network thread) and the writer thread, joined by one bounded queue.

``intake`` only validates and enqueues. When the queue is full it blocks the network thread: paho
stops reading the socket, the broker stops sending (its in-flight window is full) and keeps the
rest, so memory stays bounded. The writer takes batches by size or interval, writes each in one
transaction, commits, and only then acknowledges every message of the batch (dead letters too).
On a database error nothing is acknowledged: the batch is kept and retried with backoff.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple, cast

import psycopg

from forewarn.assets import MachineSpec
from forewarn.contract import Event, Limits, Reason, Telemetry, validate
from forewarn.errors import ContractError, StorageUnavailable
from forewarn.storage.assets import machine_specs
from forewarn.storage.readings import DEAD_LETTER_EXCERPT_BYTES
from ingest.fastpath import fast_telemetry
from ingest.metrics import IngestMetrics
from ingest.sparkplug.codec import NAMESPACE, SpbTopic
from ingest.sparkplug.host import Outcome, SparkplugHost
from ingest.writer import REORDER_WINDOW, Batch, Written, isolate_poison, write_batch

log = logging.getLogger(__name__)

REGISTRY_REFRESH_S = 30.0  # new machines registered elsewhere are picked up this often
DRAIN_TIMEOUT_S = 30.0
IDLE_FLUSH_S = 0.02  # flush a partial batch once no message arrived for this long
POLL_S = 0.002  # the writer's nap between looks at the queue while it fills a batch  # on stop, give up on an unreachable database after this long
BACKOFF_MAX_S = 5.0  # database retry: 0.1 s, doubling per failed attempt, capped here
STALL_AFTER_S = 30.0  # /readyz fails when taken messages stay unsettled this long

TELEMETRY, EVENT, DEAD, SPARKPLUG = 0, 1, 2, 3
SPB_PREFIX = NAMESPACE + "/"


class Item(NamedTuple):
    """One message on the queue between intake and writer."""

    kind: int  # TELEMETRY, EVENT, DEAD or SPARKPLUG
    obj: object  # Telemetry | Event | (reason, detail) | sparkplug Outcome
    topic: str
    payload: bytes
    mid: int  # MQTT message id, acknowledged once committed
    qos: int
    gen: int  # connection generation: an ack only on the connection that delivered it


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """What one committed batch held; handed to the ``on_commit`` hook (benchmark, tests)."""

    messages: int
    written: Written
    lags_s: list[float]
    committed_at: float


def load_specs(conn: psycopg.Connection, auto_register: bool) -> dict[str, MachineSpec]:
    """The registry as validation specs; auto-registered (sensor-less) machines stay unchecked."""
    specs = machine_specs(conn)
    if auto_register:
        specs = {m: s for m, s in specs.items() if s.bounds}
    return specs


class Pipeline:
    """Validate-and-enqueue on one side, batch-commit-ack on the other."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection],
        ack: Callable[[list[tuple[int, int]]], object],
        *,
        specs: Mapping[str, MachineSpec],
        limits: Limits,
        root: str,
        batch_size: int,
        flush_interval_s: float,
        queue_max: int,
        on_commit: Callable[[CommitInfo], None] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        stall_after_s: float = STALL_AFTER_S,
        reorder_window: int = REORDER_WINDOW,
        dead_letter_excerpt_bytes: int = DEAD_LETTER_EXCERPT_BYTES,
        sparkplug: SparkplugHost | None = None,
        rebirth: Callable[[SpbTopic], None] | None = None,
    ) -> None:
        self._connect = connect
        self._now = now
        self._stall_after_s = stall_after_s
        self._reorder_window = reorder_window
        self._excerpt = dead_letter_excerpt_bytes
        self.taken = 0  # messages that entered intake (network thread)
        self.settled = 0  # of those, written and acknowledged (writer thread)
        self._watch = (0, time.monotonic())  # (settled, since when) for stalled()
        self._sparkplug = sparkplug
        self._rebirth = rebirth
        self._ack = ack
        self._specs = specs
        self._limits = limits
        self._root = root
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._on_commit = on_commit
        self.queue: queue.Queue[Item] = queue.Queue(maxsize=queue_max)
        # by kind (TELEMETRY, EVENT, DEAD, SPARKPLUG); a plain int is cheapest here
        self.received = [0, 0, 0, 0]
        self.metrics = IngestMetrics(
            lambda: self.queue.qsize(),
            lambda: dict(
                zip(("telemetry", "event", "rejected", "sparkplug"), self.received, strict=True)
            ),
        )
        self._accepting = True
        self._putting = False  # the network thread is inside intake()
        self._gen = 0
        self._gen_lock = threading.Lock()  # an ack never goes out on a newer connection
        self._registered: set[str] = set()
        self._specs_at = time.monotonic()
        self._stopping = threading.Event()
        self._writer = threading.Thread(target=self._run_writer, name="ingest-writer", daemon=True)
        self.max_depth_seen = 0
        self.crashed = False

    # -- network thread -------------------------------------------------------------------
    def new_connection(self) -> None:
        """Called on connect and on disconnect: acks of older deliveries are no longer sent."""
        with self._gen_lock:
            self._gen += 1

    def intake(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        """Validate one message and enqueue it (blocks while the queue is full)."""
        # Only this (network) thread writes _putting, so no lock. If the writer finishes its drain
        # in the instant between the check below and the put, the message is simply never acked
        # and the broker redelivers it to the next session: nothing is lost.
        self._putting = True
        try:
            if not self._accepting:
                return  # draining: not acked, so the broker redelivers it to the next session
            self.taken += 1
            item = self.classify(topic, payload, mid, qos)
            self.received[item.kind] += 1
            self.queue.put(item)
        finally:
            self._putting = False

    def classify(self, topic: str, payload: bytes, mid: int, qos: int) -> Item:
        """The queue item for one message: validated, or a dead letter with its reason.

        Never raises: a message that makes validation itself fail is dead-lettered as
        ``internal`` (logged once, with the traceback) and acknowledged like any dead letter,
        so one poison message can never be redelivered forever and stall the broker's window.
        """
        gen = self._gen
        try:
            now = self._now()
            if self._sparkplug is not None and topic.startswith(SPB_PREFIX):
                return self._sparkplug_item(topic, payload, mid, qos, now)
            msg = fast_telemetry(
                topic, payload, self._specs, now=now, limits=self._limits, root=self._root
            )
            if msg is not None:
                return Item(TELEMETRY, msg, topic, payload, mid, qos, gen)
            full = validate(
                topic, payload, self._specs, now=now, limits=self._limits, root=self._root
            )
            kind = TELEMETRY if isinstance(full, Telemetry) else EVENT
            return Item(kind, full, topic, payload, mid, qos, gen)
        except ContractError as exc:
            return Item(DEAD, (exc.reason, exc.detail), topic, payload, mid, qos, gen)
        except Exception as exc:  # a validation bug must not leave the message unacknowledged
            log.exception("validating a message on %r failed; dead-lettered as internal", topic)
            detail = f"{type(exc).__name__}: {exc}"[:500]
            return Item(DEAD, (Reason.INTERNAL.value, detail), topic, payload, mid, qos, gen)

    def stalled(self, now: float | None = None) -> bool:
        """True when messages were taken but none was settled for ``stall_after_s``.

        Settled means written and acknowledged (or given back for redelivery on reconnect).
        Read by ``/readyz``: a worker that holds messages without making progress is not ready.
        """
        now = time.monotonic() if now is None else now
        taken, settled = self.taken, self.settled
        if taken <= settled:
            self._watch = (settled, now)
            return False
        if self._watch[0] != settled:
            self._watch = (settled, now)
            return False
        return now - self._watch[1] > self._stall_after_s

    def ready(self) -> bool:
        return self.metrics.ready() and not self.stalled()

    def _sparkplug_item(
        self, topic: str, payload: bytes, mid: int, qos: int, now: datetime
    ) -> Item:
        """Decode a Sparkplug B message into contract messages (or one dead letter)."""
        assert self._sparkplug is not None
        out = self._sparkplug.handle(topic, payload, self._specs, now)  # raises ContractError
        if out.rebirth is not None and self._rebirth is not None:
            self._rebirth(out.rebirth)
            self.metrics.sparkplug_rebirths.inc()
        return Item(SPARKPLUG, out, topic, payload, mid, qos, self._gen)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self._writer.start()

    def stop_intake(self) -> None:
        """Stop taking messages; what is queued is still written and acknowledged."""
        self._accepting = False

    def drain(self, timeout_s: float = DRAIN_TIMEOUT_S) -> bool:
        """Stop intake, write and ack everything queued; False if the writer did not finish."""
        self.stop_intake()
        self._stopping.set()
        self._writer.join(timeout_s)
        return not self._writer.is_alive() and not self.crashed

    def writer_alive(self) -> bool:
        return self._writer.is_alive()

    # -- writer thread --------------------------------------------------------------------
    def _drained(self) -> bool:
        return not self._putting and self.queue.empty()

    def _collect(self) -> list[Item]:
        """Up to a batch: until full, FLUSH_INTERVAL_S after the first item, or a pause in the stream.

        Between polls the writer sleeps instead of blocking on the queue: a blocked ``get`` makes
        every ``put`` wake this thread (a futex call and a GIL hand-off per message), which cost
        more than validating the message.
        """
        q = self.queue
        try:
            first = q.get(timeout=0.05 if self._stopping.is_set() else self._flush_interval_s)
        except queue.Empty:
            return []
        items = [first]
        get = q.get_nowait
        now = time.monotonic()
        deadline, idle_since = now + self._flush_interval_s, now
        while True:
            took = 0
            try:
                while len(items) < self._batch_size:
                    items.append(get())
                    took += 1
            except queue.Empty:
                pass
            now = time.monotonic()
            if len(items) >= self._batch_size or now >= deadline:
                return items
            if took:
                idle_since = now
            elif now - idle_since >= IDLE_FLUSH_S:
                return items  # a pause in the stream flushes early: low latency at low rates
            time.sleep(POLL_S)

    def _run_writer(self) -> None:
        conn: psycopg.Connection | None = None
        try:
            while True:
                items = self._collect()
                if items:
                    depth = self.queue.qsize() + len(items)
                    self.max_depth_seen = max(self.max_depth_seen, depth)
                    conn = self._commit(conn, items)
                elif self._stopping.is_set() and self._drained():
                    return
        except Exception:  # the writer must never die silently: log, and the worker stops
            self.crashed = True
            log.exception("ingest writer crashed")
            raise
        finally:
            if conn is not None:
                conn.close()

    def _batch(self, items: list[Item]) -> Batch:
        batch = Batch()
        tele, events, dead, unknown = batch.readings, batch.events, batch.dead, batch.unknown
        tele_raw: list[tuple[str, bytes]] = []
        event_raw: list[tuple[str, bytes]] = []
        for kind, obj, topic, payload, _mid, _qos, _gen in items:
            if kind == SPARKPLUG:
                assert isinstance(obj, Outcome)
                self._add_sparkplug(batch, obj, topic, payload, tele_raw, event_raw)
                continue
            if kind == TELEMETRY:
                assert isinstance(obj, Telemetry)
                tele.append(obj)
                tele_raw.append((topic, payload))
            elif kind == EVENT:
                assert isinstance(obj, Event)
                events.append(obj)
                event_raw.append((topic, payload))
            else:
                reason, detail = cast(tuple[str, str], obj)
                dead.append((topic, payload, reason, detail))
                continue
            if not obj.known and obj.machine not in self._registered:
                unknown[obj.machine] = obj.site
        batch.raw = tele_raw + event_raw
        return batch

    def _add_sparkplug(
        self,
        batch: Batch,
        out: Outcome,
        topic: str,
        payload: bytes,
        tele_raw: list[tuple[str, bytes]],
        event_raw: list[tuple[str, bytes]],
    ) -> None:
        batch.births.extend(out.births)
        batch.registrations.extend(out.registrations)
        if out.dead is not None:
            batch.dead.append((topic, payload, *out.dead))
        for msg in out.messages:
            if isinstance(msg, Telemetry):
                batch.readings.append(msg)
                tele_raw.append((topic, payload))
            else:
                batch.events.append(msg)
                event_raw.append((topic, payload))
            if not msg.known and msg.machine not in self._registered:
                batch.unknown[msg.machine] = msg.site

    def _commit(
        self, conn: psycopg.Connection | None, items: list[Item]
    ) -> psycopg.Connection | None:
        """Write ``items`` until committed (retrying with backoff), then ack them."""
        batch = self._batch(items)
        attempt = 0
        give_up_at: float | None = None
        while True:
            attempt += 1
            try:
                if conn is None or conn.closed:
                    conn = self._connect()
                self._maybe_refresh_specs(conn)
                t0 = time.perf_counter()
                try:
                    written = write_batch(conn, batch, self._reorder_window, self._excerpt)
                except psycopg.DataError as exc:
                    log.warning("batch refused by the database (%s); isolating the message", exc)
                    written = isolate_poison(conn, batch, self._reorder_window, self._excerpt)
                commit_s = time.perf_counter() - t0
                break
            except (StorageUnavailable, psycopg.OperationalError, psycopg.InterfaceError,
                    psycopg.ProgrammingError, psycopg.InternalError,
                    psycopg.IntegrityError) as exc:  # fmt: skip
                # transient (or needs an operator): keep the batch, ack nothing, retry
                self.metrics.db_errors.inc()
                self.metrics.db_ok.set(0)
                delay = min(BACKOFF_MAX_S, 0.1 * 2 ** min(attempt - 1, 10))
                log.warning(
                    "database write failed (attempt %d, retry in %.1fs): %s", attempt, delay, exc
                )
                if conn is not None:
                    conn.close()
                conn = None
                if self._stopping.is_set():
                    give_up_at = give_up_at or time.monotonic() + DRAIN_TIMEOUT_S
                    if time.monotonic() > give_up_at:
                        raise RuntimeError("database unreachable while draining") from exc
                time.sleep(delay)
        self.metrics.db_ok.set(1)
        self._registered.update(batch.unknown)
        if batch.registrations and conn is not None:  # validate their next data as registered
            self._specs = load_specs(conn, self._limits.auto_register)
            self._specs_at = time.monotonic()
        self._ack_all(items)
        self._record(items, batch, written, commit_s)
        return conn

    def _ack_all(self, items: list[Item]) -> None:
        with self._gen_lock:
            gen = self._gen
            # older deliveries come again after a reconnect: their acks must not go out
            self._ack([(item.mid, item.qos) for item in items if item.gen == gen])
        self.settled += len(items)

    def _record(self, items: list[Item], batch: Batch, written: Written, commit_s: float) -> None:
        m = self.metrics
        now = time.time()
        lags = [now - t.ts.timestamp() for t in batch.readings]
        lags += [now - e.ts.timestamp() for e in batch.events]
        observe = m.lag_seconds.observe
        for lag in lags:
            observe(lag)
        m.batch_size.observe(len(items))
        m.commit_seconds.observe(commit_s)
        m.stored.labels("readings").inc(written.readings)
        m.stored.labels("machine_events").inc(written.events)
        for _topic, _payload, reason, _detail in batch.dead:
            m.rejected.labels(reason).inc()
        for reason in written.rejected:
            m.rejected.labels(reason).inc()
        if written.reordered:
            m.reordered.inc(written.reordered)
        if self._on_commit is not None:
            self._on_commit(CommitInfo(len(items), written, lags, now))

    def _maybe_refresh_specs(self, conn: psycopg.Connection) -> None:
        if time.monotonic() - self._specs_at < REGISTRY_REFRESH_S:
            return
        self._specs = load_specs(conn, self._limits.auto_register)
        self._specs_at = time.monotonic()

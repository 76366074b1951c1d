"""One batch, one transaction: readings, events and dead letters are written together, then committed.

The caller acknowledges the batch's messages to the broker only after :func:`write_batch` returns,
so an acknowledged message is always a committed row. (machine, seq) identifies a reading: an
exact redelivery after a crash is a no-op, the same seq with other content is ``seq_conflict``,
and a seq far below the machine's newest is ``stale_seq`` (forewarn.storage.readings.write_readings).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
import psycopg

from forewarn.clock import wall_now
from forewarn.contract import Event, Reason, Telemetry
from forewarn.storage.assets import register_unknown_machine
from forewarn.storage.readings import (
    DEAD_LETTER_EXCERPT_BYTES,
    insert_dead_letters,
    insert_events,
    write_readings,
)
from forewarn.storage.sparkplug import (
    SparkplugMetricRow,
    register_sparkplug_device,
    upsert_sparkplug_metrics,
)
from ingest.sparkplug.host import DeviceRegistration

log = logging.getLogger(__name__)

# A dead letter for a message the database itself refused (e.g. a NUL character in a string):
# not a contract reason, but it must not block the stream either.
DB_REJECTED = Reason.DB_REJECTED.value
SEQ_CONFLICT, STALE_SEQ = Reason.SEQ_CONFLICT.value, Reason.STALE_SEQ.value
REORDER_WINDOW = 10_000  # default of FOREWARN_INGEST__REORDER_WINDOW


@dataclass(slots=True)
class Batch:
    """What one transaction writes; ``dead`` rows are (topic, payload, reason, detail)."""

    readings: list[Telemetry] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    raw: list[tuple[str, bytes]] = field(default_factory=list)  # readings' then events' wire form
    dead: list[tuple[str, bytes, str, str]] = field(default_factory=list)
    unknown: dict[str, str] = field(default_factory=dict)  # machine -> site, to auto-register
    births: list[SparkplugMetricRow] = field(default_factory=list)  # Sparkplug metric catalogue
    registrations: list[DeviceRegistration] = field(default_factory=list)  # Sparkplug devices

    def __len__(self) -> int:
        return len(self.readings) + len(self.events) + len(self.dead)


@dataclass(frozen=True, slots=True)
class Written:
    readings: int
    events: int
    dead: int
    reordered: int = 0  # readings stored below their machine's newest seq (flagged)
    rejected: tuple[str, ...] = ()  # reasons of the messages the writer dead-lettered itself


def sequence_readings(
    readings: Sequence[Telemetry], window: int
) -> tuple[list[int], list[bool], list[tuple[int, str, str]]]:
    """Order checks inside one batch, before the database is asked (pure).

    Returns the indexes to write, a reordered flag for each of them, and the rejected ones as
    (index, reason, detail): a second message with a (machine, seq) seen earlier in the batch is
    dropped when identical (a redelivery) and ``seq_conflict`` otherwise; a seq below an earlier
    one of the same machine is flagged, or ``stale_seq`` when more than ``window`` below it.
    """
    seen: dict[tuple[str, int], Telemetry] = {}
    newest: dict[str, int] = {}
    keep: list[int] = []
    flags: list[bool] = []
    rejected: list[tuple[int, str, str]] = []
    for i, t in enumerate(readings):
        key = (t.machine, t.seq)
        first = seen.get(key)
        if first is not None:
            if first != t:
                rejected.append((i, SEQ_CONFLICT, f"seq {t.seq} arrived twice with other content"))
            continue
        seen[key] = t
        top = newest.get(t.machine, -1)
        if t.seq < top - window:
            rejected.append((i, STALE_SEQ, f"seq {t.seq} is more than {window} below {top}"))
            continue
        newest[t.machine] = max(top, t.seq)
        keep.append(i)
        flags.append(t.seq < top)
    return keep, flags, rejected


def _register_devices(conn: psycopg.Connection, regs: Sequence[DeviceRegistration]) -> None:
    now = wall_now()
    for reg in regs:
        # valid from the birth, not from when ingest got to it: data the device sent after its
        # birth but before this commit (a backlog) is judged with the sensors it declared
        since = now if reg.born is None else min(reg.born, now)
        register_sparkplug_device(
            conn, reg.machine, site_id=reg.site, type_id=reg.type_id, sensors=reg.sensors, now=since
        )


def write_readings_seq(
    conn: psycopg.Connection, batch: Batch, window: int
) -> tuple[int, int, list[tuple[str, bytes, str, str]]]:
    """Store the batch's readings with (machine, seq) as identity: (stored, reordered, dead rows)."""
    readings = batch.readings
    if not readings:
        return 0, 0, []
    keep, flags, rejected = sequence_readings(readings, window)
    dumps = orjson.dumps
    rows = [
        (t.machine, t.seq, t.ts, t.regime, dumps(t.values).decode())
        for t in (readings[i] for i in keep)
    ]
    verdicts = write_readings(conn, rows, reorder_window=window, flagged=flags)
    rejected += [(keep[i], reason, detail) for i, reason, detail in verdicts.rejected]
    raw = batch.raw  # readings' wire forms come first, in the same order
    dead = [(raw[i][0], raw[i][1], reason, detail) for i, reason, detail in rejected]
    return verdicts.stored, verdicts.reordered, dead


def write_batch(
    conn: psycopg.Connection,
    batch: Batch,
    reorder_window: int = REORDER_WINDOW,
    excerpt_bytes: int = DEAD_LETTER_EXCERPT_BYTES,
) -> Written:
    """Write ``batch`` in one transaction on an autocommit connection and commit it."""
    with conn.transaction():
        _register_devices(conn, batch.registrations)  # before the fallback below
        for machine, site in batch.unknown.items():
            register_unknown_machine(conn, machine, site)
        upsert_sparkplug_metrics(conn, batch.births)
        r, late, seq_dead = write_readings_seq(conn, batch, reorder_window)
        e = insert_events(conn, batch.events)
        d = insert_dead_letters(conn, batch.dead + seq_dead, excerpt_bytes=excerpt_bytes)
    return Written(r, e, d, late, tuple(row[2] for row in seq_dead))


def isolate_poison(
    conn: psycopg.Connection,
    batch: Batch,
    reorder_window: int = REORDER_WINDOW,
    excerpt_bytes: int = DEAD_LETTER_EXCERPT_BYTES,
) -> Written:
    """Write a batch the database refused one message at a time; dead-letter each refused one.

    Only for errors caused by data (psycopg.DataError): a transient error never gets here.
    """
    r = e = d = late = 0
    rejected: tuple[str, ...] = ()
    if batch.registrations:
        with conn.transaction():
            _register_devices(conn, batch.registrations)
    for machine, site in batch.unknown.items():
        with conn.transaction():
            register_unknown_machine(conn, machine, site)
    if batch.births:
        with conn.transaction():
            upsert_sparkplug_metrics(conn, batch.births)
    singles: list[tuple[Batch, tuple[str, bytes]]] = []
    raw = iter(batch.raw)
    for t in batch.readings:
        wire = next(raw)
        singles.append((Batch(readings=[t], raw=[wire]), wire))
    for ev in batch.events:
        wire = next(raw)
        singles.append((Batch(events=[ev], raw=[wire]), wire))
    singles += [(Batch(dead=[row]), (row[0], row[1])) for row in batch.dead]
    for single, (topic, payload) in singles:
        try:
            w = write_batch(conn, single, reorder_window, excerpt_bytes)
        except psycopg.DataError as exc:
            log.warning("database refused a message on %s, dead-lettering it: %s", topic, exc)
            if single.dead:  # a dead letter itself refused (e.g. NUL in its detail): keep the bytes
                row = (topic, payload, DB_REJECTED, f"{single.dead[0][2]}: {exc}"[:2000])
            else:
                row = (topic, payload, DB_REJECTED, str(exc)[:2000])
            with conn.transaction():
                d += insert_dead_letters(conn, [row], excerpt_bytes=excerpt_bytes)
            continue
        r, e, d, late = r + w.readings, e + w.events, d + w.dead, late + w.reordered
        rejected += w.rejected
    return Written(r, e, d, late, rejected)

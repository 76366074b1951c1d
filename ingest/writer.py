"""One batch, one transaction: readings, events and dead letters are written together, then committed.

The caller acknowledges the batch's messages to the broker only after :func:`write_batch` returns,
so an acknowledged message is always a committed row. Every insert is idempotent on the natural
key (machine, seq, ts), which makes a redelivery after a crash a no-op.
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
from forewarn.storage.readings import insert_dead_letters, insert_events
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

_READINGS_STAGE = (
    "create temp table if not exists ingest_readings_stage"
    " (machine_id text, seq bigint, ts timestamptz, regime integer, values jsonb)"
    " on commit delete rows"
)
_READINGS_MERGE = (
    "insert into readings (machine_id, seq, ts, regime, values)"
    " select distinct on (machine_id, seq, ts) machine_id, seq, ts, regime, values"
    " from ingest_readings_stage on conflict do nothing"
)


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


def insert_readings_fast(conn: psycopg.Connection, rows: Sequence[Telemetry]) -> int:
    """Like :func:`forewarn.storage.readings.insert_readings`, with the jsonb pre-encoded by orjson.

    Same staging-table + ``ON CONFLICT DO NOTHING`` semantics; the values dict is serialised once
    by orjson instead of per row by the generic JSON adapter (the hot spot of the writer).
    """
    if not rows:
        return 0
    conn.execute(_READINGS_STAGE)
    with conn.cursor() as cur:
        with cur.copy(
            "copy ingest_readings_stage (machine_id, seq, ts, regime, values) from stdin"
        ) as copy:
            dumps = orjson.dumps
            for t in rows:
                copy.write_row((t.machine, t.seq, t.ts, t.regime, dumps(t.values).decode()))
        cur.execute(_READINGS_MERGE)
        return cur.rowcount


def _register_devices(conn: psycopg.Connection, regs: Sequence[DeviceRegistration]) -> None:
    now = wall_now()
    for reg in regs:
        register_sparkplug_device(
            conn, reg.machine, site_id=reg.site, type_id=reg.type_id, sensors=reg.sensors, now=now
        )


def write_batch(conn: psycopg.Connection, batch: Batch) -> Written:
    """Write ``batch`` in one transaction on an autocommit connection and commit it."""
    with conn.transaction():
        _register_devices(conn, batch.registrations)  # before the fallback below
        for machine, site in batch.unknown.items():
            register_unknown_machine(conn, machine, site)
        upsert_sparkplug_metrics(conn, batch.births)
        r = insert_readings_fast(conn, batch.readings)
        e = insert_events(conn, batch.events)
        d = insert_dead_letters(conn, batch.dead)
    return Written(r, e, d)


def isolate_poison(conn: psycopg.Connection, batch: Batch) -> Written:
    """Write a batch the database refused one message at a time; dead-letter each refused one.

    Only for errors caused by data (psycopg.DataError): a transient error never gets here.
    """
    r = e = d = 0
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
    singles += [(Batch(readings=[t]), next(raw)) for t in batch.readings]
    singles += [(Batch(events=[ev]), next(raw)) for ev in batch.events]
    singles += [(Batch(dead=[row]), (row[0], row[1])) for row in batch.dead]
    for single, (topic, payload) in singles:
        try:
            w = write_batch(conn, single)
        except psycopg.DataError as exc:
            log.warning("database refused a message on %s, dead-lettering it: %s", topic, exc)
            if single.dead:  # a dead letter itself refused (e.g. NUL in its detail): keep the bytes
                row = (topic, payload, DB_REJECTED, f"{single.dead[0][2]}: {exc}"[:2000])
            else:
                row = (topic, payload, DB_REJECTED, str(exc)[:2000])
            with conn.transaction():
                d += insert_dead_letters(conn, [row])
            continue
        r, e, d = r + w.readings, e + w.events, d + w.dead
    return Written(r, e, d)

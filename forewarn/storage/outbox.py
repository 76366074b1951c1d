"""An on-disk outbox (SQLite) for connectors: every message goes through it, so nothing is lost.

A message is written here (with the machine's next sequence number, in the same transaction) before
it is published, and deleted only after the broker acknowledged it (PUBACK). While the broker is
unreachable the outbox fills up to ``max_messages``; beyond that the oldest messages are dropped and
counted (``dropped``). Sequence numbers survive restarts; a machine the outbox has never seen starts
at the current time in milliseconds, above any sequence number it was given before (at under one
message per millisecond), so even a lost outbox does not reuse one.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from forewarn.contract import Telemetry, encode, topic_for

_SCHEMA = """
create table if not exists outbox (id integer primary key autoincrement, topic text not null,
                                   payload blob not null);
create table if not exists seqs (machine text primary key, seq integer not null);
create table if not exists last_seen (machine text, sensor text, ts_ms integer not null,
                                      primary key (machine, sensor));
create table if not exists counters (name text primary key, value integer not null);
"""


@dataclass(frozen=True, slots=True)
class Reading:
    site: str
    machine: str
    ts: datetime
    values: dict[str, float | None]


class Outbox:
    """Thread-safe: the OPC UA side adds, the MQTT side takes and removes."""

    def __init__(self, path: Path, max_messages: int, root: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("pragma journal_mode=wal")
        self._db.execute("pragma synchronous=full")  # an added message survives a power cut
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._max = max_messages
        self._root = root

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __len__(self) -> int:
        with self._lock:
            row = self._db.execute("select count(*) from outbox").fetchone()
        return int(row[0])

    @property
    def dropped(self) -> int:
        """Messages dropped (oldest first) because the outbox was full, over its whole life."""
        with self._lock:
            row = self._db.execute("select value from counters where name = 'dropped'").fetchone()
        return int(row[0]) if row else 0

    def last_seen(self) -> dict[tuple[str, str], int]:
        """(machine, sensor) -> source timestamp (ms) of the newest value already queued."""
        with self._lock:
            rows = self._db.execute("select machine, sensor, ts_ms from last_seen").fetchall()
        return {(m, s): int(ts) for m, s, ts in rows}

    def add(self, readings: Sequence[Reading]) -> int:
        """Queue ``readings`` as contract messages with the next sequence numbers; returns dropped."""
        if not readings:
            return 0
        with self._lock:
            db = self._db
            db.execute("begin immediate")
            try:
                for r in readings:
                    row = db.execute("select seq from seqs where machine = ?", (r.machine,))
                    found = row.fetchone()
                    seq = int(found[0]) + 1 if found else int(time.time() * 1000)
                    db.execute(
                        "insert into seqs (machine, seq) values (?, ?) on conflict (machine)"
                        " do update set seq = excluded.seq",
                        (r.machine, seq),
                    )
                    msg = Telemetry(r.site, r.machine, r.ts, seq, r.values)
                    db.execute(
                        "insert into outbox (topic, payload) values (?, ?)",
                        (topic_for(r.site, r.machine, "telemetry", self._root), encode(msg)),
                    )
                    ts_ms = int(r.ts.timestamp() * 1000)
                    db.executemany(
                        "insert into last_seen (machine, sensor, ts_ms) values (?, ?, ?)"
                        " on conflict (machine, sensor) do update set ts_ms = excluded.ts_ms"
                        " where excluded.ts_ms > last_seen.ts_ms",
                        [(r.machine, s, ts_ms) for s in r.values],
                    )
                over = db.execute("select count(*) from outbox").fetchone()[0] - self._max
                dropped = 0
                if over > 0:  # full: the oldest go first, and are counted
                    dropped = db.execute(
                        "delete from outbox where id in"
                        " (select id from outbox order by id limit ?)",
                        (over,),
                    ).rowcount
                    db.execute(
                        "insert into counters (name, value) values ('dropped', ?)"
                        " on conflict (name) do update set value = value + excluded.value",
                        (dropped,),
                    )
                db.execute("commit")
            except BaseException:
                db.execute("rollback")
                raise
        return dropped

    def peek(self, limit: int) -> list[tuple[int, str, bytes]]:
        """The oldest ``limit`` messages as (id, topic, payload)."""
        with self._lock:
            rows = self._db.execute(
                "select id, topic, payload from outbox order by id limit ?", (limit,)
            ).fetchall()
        return [(int(i), str(t), bytes(p)) for i, t, p in rows]

    def remove(self, ids: Sequence[int]) -> None:
        """Forget messages the broker acknowledged."""
        if not ids:
            return
        with self._lock:
            self._db.executemany("delete from outbox where id = ?", [(i,) for i in ids])

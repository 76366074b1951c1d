"""Dead letters after the fact: list them, pick the ones to replay, mark them, prune old ones.

Writing them is :func:`forewarn.storage.readings.insert_dead_letters` (the ingest writer's batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import Connection
from psycopg.rows import class_row


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    received_at: datetime
    topic: str
    reason: str
    detail: str
    size_bytes: int
    sha256: str
    replayed_at: datetime | None
    payload: bytes  # at most the stored excerpt

    @property
    def complete(self) -> bool:
        """The stored excerpt is the whole message (only then can it be replayed)."""
        return len(self.payload) == self.size_bytes


_COLUMNS = (
    "id, received_at, topic, reason, detail, coalesce(size_bytes, length(payload)) as size_bytes,"
    " coalesce(sha256, encode(sha256(payload), 'hex')) as sha256, replayed_at, payload"
)


def list_dead_letters(
    conn: Connection,
    *,
    reason: str | None = None,
    limit: int = 100,
    after_id: int = 0,
    include_replayed: bool = True,
) -> list[DeadLetter]:
    """Dead letters by id (oldest first), optionally of one reason, not yet replayed."""
    with conn.cursor(row_factory=class_row(DeadLetter)) as cur:
        cur.execute(
            f"select {_COLUMNS} from dead_letters where id > %s"
            " and (%s::text is null or reason = %s) and (%s or replayed_at is null)"
            " order by id limit %s",
            (after_id, reason, reason, include_replayed, limit),
        )
        return cur.fetchall()


def count_by_reason(conn: Connection) -> dict[str, int]:
    """Dead letters not yet replayed, per reason code."""
    rows = conn.execute(
        "select reason, count(*) from dead_letters where replayed_at is null group by 1 order by 1"
    ).fetchall()
    return {str(r): int(n) for r, n in rows}


def mark_replayed(conn: Connection, ids: list[int], at: datetime) -> int:
    """Record that these dead letters were re-ingested (inside the writing transaction)."""
    if not ids:
        return 0
    cur = conn.execute(
        "update dead_letters set replayed_at = %s where id = any(%s) and replayed_at is null",
        (at, ids),
    )
    return cur.rowcount


def prune_dead_letters(conn: Connection, before: datetime) -> int:
    """Delete dead letters received before ``before``. Returns rows deleted."""
    return conn.execute("delete from dead_letters where received_at < %s", (before,)).rowcount

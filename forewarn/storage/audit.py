"""The audit log: who did what to which target, and when."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb


def record(
    conn: Connection,
    actor: str,
    action: str,
    target: str,
    detail: Any,
    *,
    at: datetime | None = None,
) -> None:
    """Append one entry (``at`` defaults to the database's now())."""
    if at is None:
        conn.execute(
            "insert into audit_log (actor, action, target, detail) values (%s, %s, %s, %s)",
            (actor, action, target, Jsonb(detail)),
        )
    else:
        conn.execute(
            "insert into audit_log (at, actor, action, target, detail) values (%s, %s, %s, %s, %s)",
            (at, actor, action, target, Jsonb(detail)),
        )


def count_since(conn: Connection, action: str, since: datetime) -> int:
    """Entries of ``action`` after ``since``."""
    row = conn.execute(
        "select count(*) from audit_log where action = %s and at > %s", (action, since)
    ).fetchone()
    return 0 if row is None else int(row[0])


def record_many(conn: Connection, rows: Sequence[tuple[datetime, str, str, str, Any]]) -> int:
    """Append entries (at, actor, action, target, detail); returns how many."""
    with conn.cursor() as cur:
        cur.executemany(
            "insert into audit_log (at, actor, action, target, detail) values (%s, %s, %s, %s, %s)",
            [(*r[:4], Jsonb(r[4])) for r in rows],
        )
    return len(rows)

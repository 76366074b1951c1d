"""Session-scoped scratch copies of tables, for work whose rows must not outlive it.

:func:`shadow_predictions` creates a temporary ``predictions`` table in this session: PostgreSQL
searches ``pg_temp`` first, so every unqualified ``predictions`` in the session (the backtest's
writes and reads) uses the empty copy while the plant's real predictions stay untouched, and the
copy vanishes with the session even if the process dies.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from psycopg import Connection


@contextmanager
def shadow_predictions(conn: Connection) -> Iterator[None]:
    """Within the block, this session's ``predictions`` is an empty temporary copy."""
    conn.execute("create temp table predictions (like predictions including all)")
    conn.commit()
    try:
        yield
    finally:
        conn.rollback()
        conn.execute("drop table if exists pg_temp.predictions")
        conn.commit()

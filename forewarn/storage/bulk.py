"""Bulk loads by COPY into a named table: rows as tuples, or tab-separated text already escaped.

For loads that are not one aggregate's write path (history imports, generated plant data):
the normal write paths have their own functions (``readings.insert_readings`` and the like).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import Connection, sql

TEXT_CHUNK_ROWS = 50_000  # lines buffered per COPY write


def _copy(table: str, columns: Sequence[str]) -> sql.Composed:
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    return sql.SQL("copy {} ({}) from stdin").format(sql.Identifier(table), cols)


def copy_rows(
    conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """COPY ``rows`` (one value per column, adapted by psycopg) into ``table``; returns rows."""
    n = 0
    with conn.cursor() as cur, cur.copy(_copy(table, columns)) as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def copy_text(conn: Connection, table: str, columns: Sequence[str], lines: Iterable[str]) -> int:
    """COPY tab-separated lines (already escaped, newline-terminated) into ``table``; returns rows."""
    n = 0
    with conn.cursor() as cur, cur.copy(_copy(table, columns)) as copy:
        buf = io.StringIO()
        for line in lines:
            buf.write(line)
            n += 1
            if n % TEXT_CHUNK_ROWS == 0:
                copy.write(buf.getvalue())
                buf = io.StringIO()
        copy.write(buf.getvalue())
    return n


def count_rows(conn: Connection, table: str) -> int:
    """Rows in ``table``."""
    row = conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(table))).fetchone()
    return 0 if row is None else int(row[0])

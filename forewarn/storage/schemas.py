"""Throwaway schemas: one migrated schema per test or benchmark run, selected through the URL.

The schema is chosen with ``options=-csearch_path=...`` in the URL, so subprocesses given the URL
(an ingest worker, uvicorn workers) see the same tables. This is the one place that builds such URLs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg
from psycopg import sql

from forewarn.storage.migrate import migrate


def schema_url(url: str, schema: str) -> str:
    """``url`` with its search_path set to ``schema``."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


def schema_of(url: str) -> str:
    """The schema a :func:`schema_url` URL selects."""
    return url.rsplit("search_path%3D", 1)[1]


@contextmanager
def temporary_schema(server_url: str, prefix: str = "tmp") -> Iterator[str]:
    """Yield the URL of a new migrated schema on ``server_url``; drop it with everything in it after."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
    url = schema_url(server_url, schema)
    try:
        with psycopg.connect(url) as conn:
            migrate(conn)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))

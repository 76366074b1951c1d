"""Idempotency keys of API writes: a reused key replays the stored response."""

from __future__ import annotations

from typing import Any, NamedTuple

from psycopg import Connection
from psycopg.types.json import Jsonb


class StoredResponse(NamedTuple):
    request_hash: str
    status_code: int
    response: Any


def lock_key(conn: Connection, api_key_id: int, key: str) -> None:
    """Serialise concurrent requests with the same key until the caller's transaction ends."""
    conn.execute(
        "select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"idem:{api_key_id}:{key}",)
    )


def stored_response(conn: Connection, api_key_id: int, key: str) -> StoredResponse | None:
    """The response stored under ``key`` for this API key, or None."""
    row = conn.execute(
        "select request_hash, status_code, response from idempotency_keys"
        " where api_key_id = %s and key = %s",
        (api_key_id, key),
    ).fetchone()
    return None if row is None else StoredResponse(row[0], int(row[1]), row[2])


def store_response(
    conn: Connection,
    api_key_id: int,
    key: str,
    request_hash: str,
    response: Any,
    status_code: int = 200,
) -> None:
    """Record the response of a request made with ``key`` (inside the request's transaction)."""
    conn.execute(
        "insert into idempotency_keys (api_key_id, key, request_hash, status_code, response)"
        " values (%s, %s, %s, %s, %s)",
        (api_key_id, key, request_hash, status_code, Jsonb(response)),
    )

"""API keys: created once, stored as a SHA-256 hash of a high-entropy random key, looked up by hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from psycopg import Connection, errors

from forewarn.errors import Conflict

ROLES = ("viewer", "operator", "maintenance", "admin")
KEY_PREFIX = "fwk_"


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    role: str
    prefix: str


def hash_key(key: str) -> str:
    """Hex SHA-256 of a key. Keys carry 256 random bits, so a plain hash is enough (no KDF)."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    """The stored, displayable start of a key (identifies it in lists and logs)."""
    return key[:12]


def create_key(conn: Connection, name: str, role: str) -> str:
    """Create a key and return it: this is the only time it exists outside the caller's hands."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    try:
        row = conn.execute(
            "insert into api_keys (name, role, key_hash, prefix) values (%s, %s, %s, %s)"
            " returning id",
            (name, role, hash_key(key), key_prefix(key)),
        ).fetchone()
    except errors.UniqueViolation:
        raise Conflict(f"an API key named {name!r} exists") from None
    assert row is not None
    return key


def lookup_key(conn: Connection, key: str) -> ApiKey | None:
    """The active key matching ``key``, or None."""
    digest = hash_key(key)
    row = conn.execute(
        "select id, name, role, prefix, key_hash from api_keys"
        " where key_hash = %s and revoked_at is null",
        (digest,),
    ).fetchone()
    # the index lookup already matched; compare_digest keeps the final check constant-time
    if row is None or not hmac.compare_digest(row[4], digest):
        return None
    return ApiKey(int(row[0]), row[1], row[2], row[3])


def list_keys(conn: Connection) -> list[dict[str, object]]:
    rows = conn.execute(
        "select id, name, role, prefix, created_at, revoked_at from api_keys order by id"
    ).fetchall()
    cols = ("id", "name", "role", "prefix", "created_at", "revoked_at")
    return [dict(zip(cols, r, strict=True)) for r in rows]


def revoke_key(conn: Connection, name: str, *, now: datetime) -> bool:
    """Revoke a key by name; False when no active key has that name."""
    cur = conn.execute(
        "update api_keys set revoked_at = %s where name = %s and revoked_at is null", (now, name)
    )
    return cur.rowcount == 1


def audit(conn: Connection, actor: str, action: str, target: str) -> None:
    """Append to the audit log (key management and other admin actions)."""
    conn.execute(
        "insert into audit_log (actor, action, target) values (%s, %s, %s)", (actor, action, target)
    )

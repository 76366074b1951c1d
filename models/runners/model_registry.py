"""Model registry: immutable versions (artifact + sha256, features, window, metrics, code revision).

Aliases (champion/challenger) move through forewarn.storage.model_registry, in one audited transaction.
One registry name per machine type: ``pm-<type_id>``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb

from forewarn.storage import model_registry

NAME_PREFIX = "pm-"


def model_name(type_id: str) -> str:
    return f"{NAME_PREFIX}{type_id}"


@dataclass(frozen=True)
class StoredModel:
    id: int
    name: str
    version: int
    artifact: bytes
    metrics: dict[str, Any]


def code_revision() -> str:
    """The git commit of the code that trained a model (or 'unknown' outside a checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def register_version(
    conn: Connection,
    name: str,
    artifact: bytes,
    *,
    features: list[str],
    params: dict[str, Any],
    metrics: dict[str, Any],
    train_from: datetime | None,
    train_to: datetime | None,
) -> StoredModel:
    """Store a new immutable version (the next number for ``name``) and return it."""
    conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"model:{name}",))
    row = conn.execute(
        "select coalesce(max(version), 0) + 1 from model_versions where name = %s", (name,)
    ).fetchone()
    assert row is not None
    version = int(row[0])
    feature_hash = hashlib.sha256(json.dumps(features).encode()).hexdigest()
    new = conn.execute(
        "insert into model_versions (name, version, artifact, artifact_sha256, features, feature_hash,"
        " params, metrics, train_from, train_to, code_revision)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) returning id",
        (
            name,
            version,
            artifact,
            hashlib.sha256(artifact).hexdigest(),
            Jsonb(features),
            feature_hash,
            Jsonb(params),
            Jsonb(metrics),
            train_from,
            train_to,
            code_revision(),
        ),
    ).fetchone()
    assert new is not None
    return StoredModel(int(new[0]), name, version, artifact, metrics)


def load_alias(conn: Connection, name: str, alias: str) -> StoredModel | None:
    """The version an alias points at, with its artifact (checked against its sha256)."""
    row = conn.execute(
        "select v.id, v.name, v.version, v.artifact, v.artifact_sha256, v.metrics"
        " from model_aliases a join model_versions v on v.id = a.version_id"
        " where a.name = %s and a.alias = %s",
        (name, alias),
    ).fetchone()
    if row is None:
        return None
    artifact = bytes(row[3])
    if hashlib.sha256(artifact).hexdigest() != row[4]:
        raise ValueError(f"model {name} v{row[2]}: artifact does not match its sha256")
    return StoredModel(int(row[0]), row[1], int(row[2]), artifact, dict(row[5]))


def set_alias(conn: Connection, model: StoredModel, alias: str, *, actor: str) -> dict[str, Any]:
    """Point ``alias`` at ``model`` (audited, in the caller's transaction)."""
    return model_registry.promote(conn, model.name, model.version, alias, actor=actor)

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
    fields = model_registry.VersionFields(
        artifact=artifact,
        artifact_sha256=hashlib.sha256(artifact).hexdigest(),
        features=features,
        feature_hash=hashlib.sha256(json.dumps(features).encode()).hexdigest(),
        params=params,
        metrics=metrics,
        train_from=train_from,
        train_to=train_to,
        code_revision=code_revision(),
    )
    version_id, version = model_registry.insert_version(conn, name, fields)
    return StoredModel(version_id, name, version, artifact, metrics)


def load_alias(conn: Connection, name: str, alias: str) -> StoredModel | None:
    """The version an alias points at, with its artifact (checked against its sha256)."""
    row = model_registry.aliased_version(conn, name, alias)
    if row is None:
        return None
    artifact = bytes(row[3])
    if hashlib.sha256(artifact).hexdigest() != row[4]:
        raise ValueError(f"model {name} v{row[2]}: artifact does not match its sha256")
    return StoredModel(int(row[0]), row[1], int(row[2]), artifact, dict(row[5]))


def set_alias(conn: Connection, model: StoredModel, alias: str, *, actor: str) -> dict[str, Any]:
    """Point ``alias`` at ``model`` (audited, in the caller's transaction)."""
    return model_registry.promote(conn, model.name, model.version, alias, actor=actor)

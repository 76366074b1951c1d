"""Model versions and their movable aliases (champion/challenger): list, promote, roll back.

A promotion moves the alias and records the move in model_alias_history and audit_log, all in
the caller's single transaction, under a row lock on the alias so two promotions serialise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from forewarn.errors import Conflict, NotFound


def list_versions(conn: Connection, name: str | None = None) -> list[dict[str, Any]]:
    """Every model version (no artifact) with the aliases pointing at it, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select v.id, v.name, v.version, v.created_at, v.artifact_sha256, v.feature_hash,"
            " v.metrics, v.params, v.train_from, v.train_to, v.code_revision,"
            " coalesce(array(select a.alias from model_aliases a where a.version_id = v.id"
            "   order by a.alias), '{}') as aliases"
            " from model_versions v where (%(n)s::text is null or v.name = %(n)s)"
            " order by v.name, v.version desc",
            {"n": name},
        )
        return cur.fetchall()


def _move(
    conn: Connection, name: str, alias: str, version_id: int, previous: int | None, actor: str
) -> dict[str, Any]:
    conn.execute(
        "insert into model_aliases (name, alias, version_id, updated_at) values (%s, %s, %s, now())"
        " on conflict (name, alias) do update set version_id = excluded.version_id,"
        " updated_at = excluded.updated_at",
        (name, alias, version_id),
    )
    conn.execute(
        "insert into model_alias_history (name, alias, version_id, previous_version_id, actor)"
        " values (%s, %s, %s, %s, %s)",
        (name, alias, version_id, previous, actor),
    )
    change = {
        "name": name,
        "alias": alias,
        "version_id": version_id,
        "previous_version_id": previous,
    }
    conn.execute(
        "insert into audit_log (actor, action, target, detail) values (%s, %s, %s, %s)",
        (actor, f"model.{alias}.move", name, Jsonb(change)),
    )
    return change


def _current(conn: Connection, name: str, alias: str) -> int | None:
    conn.execute(
        "select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"alias:{name}:{alias}",)
    )
    row = conn.execute(
        "select version_id from model_aliases where name = %s and alias = %s", (name, alias)
    ).fetchone()
    return None if row is None else int(row[0])


def promote(conn: Connection, name: str, version: int, alias: str, *, actor: str) -> dict[str, Any]:
    """Point ``alias`` of model ``name`` at ``version``."""
    row = conn.execute(
        "select id from model_versions where name = %s and version = %s", (name, version)
    ).fetchone()
    if row is None:
        raise NotFound(f"model {name!r} has no version {version}")
    previous = _current(conn, name, alias)
    if previous == int(row[0]):
        return {
            "name": name,
            "alias": alias,
            "version_id": previous,
            "previous_version_id": previous,
        }
    return _move(conn, name, alias, int(row[0]), previous, actor)


def rollback(conn: Connection, name: str, alias: str, *, actor: str) -> dict[str, Any]:
    """Point ``alias`` back at the version it had before its latest move."""
    current = _current(conn, name, alias)
    if current is None:
        raise NotFound(f"model {name!r} has no {alias}")
    row = conn.execute(
        "select previous_version_id from model_alias_history where name = %s and alias = %s"
        " and version_id = %s order by id desc limit 1",
        (name, alias, current),
    ).fetchone()
    if row is None or row[0] is None:
        raise Conflict(f"the {alias} of {name!r} has no earlier version to roll back to")
    return _move(conn, name, alias, int(row[0]), current, actor)


@dataclass(frozen=True, slots=True)
class VersionFields:
    """What a model version stores besides its name, number and creation time."""

    artifact: bytes
    artifact_sha256: str
    features: list[str]
    feature_hash: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    train_from: datetime | None
    train_to: datetime | None
    code_revision: str


def insert_version(conn: Connection, name: str, fields: VersionFields) -> tuple[int, int]:
    """Store the next immutable version of ``name`` (serialised per name); returns (id, version)."""
    conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"model:{name}",))
    row = conn.execute(
        "select coalesce(max(version), 0) + 1 from model_versions where name = %s", (name,)
    ).fetchone()
    assert row is not None
    version = int(row[0])
    return _insert(conn, name, version, None, fields), version


def _insert(
    conn: Connection,
    name: str,
    version: int,
    created_at: datetime | None,
    fields: VersionFields,
    on_conflict: str = "",
) -> int:
    """One model_versions row (``created_at`` None: the database's now()); returns its id."""
    row = {
        **{f: getattr(fields, f) for f in fields.__slots__},
        **{f: Jsonb(getattr(fields, f)) for f in ("features", "params", "metrics")},
    }
    new = conn.execute(
        "insert into model_versions (name, version, created_at, artifact, artifact_sha256, features,"
        " feature_hash, params, metrics, train_from, train_to, code_revision)"
        " values (%(name)s, %(version)s, coalesce(%(created_at)s::timestamptz, now()), %(artifact)s,"
        " %(artifact_sha256)s, %(features)s, %(feature_hash)s, %(params)s, %(metrics)s,"
        " %(train_from)s, %(train_to)s, %(code_revision)s)" + on_conflict + " returning id",
        {"name": name, "version": version, "created_at": created_at, **row},
    ).fetchone()
    assert new is not None
    return int(new[0])


def aliased_version(conn: Connection, name: str, alias: str) -> tuple[Any, ...] | None:
    """(id, name, version, artifact, artifact_sha256, metrics) of the version ``alias`` points at."""
    return conn.execute(
        "select v.id, v.name, v.version, v.artifact, v.artifact_sha256, v.metrics"
        " from model_aliases a join model_versions v on v.id = a.version_id"
        " where a.name = %s and a.alias = %s",
        (name, alias),
    ).fetchone()


def newest_training_end(conn: Connection) -> datetime | None:
    """The newest version's end of training window (its creation time when it has none)."""
    row = conn.execute("select max(coalesce(train_to, created_at)) from model_versions").fetchone()
    return None if row is None else row[0]


def load_checkpoint(conn: Connection, name: str) -> tuple[bytes, dict[str, Any]] | None:
    """An online model's saved (state, position), or None."""
    row = conn.execute(
        "select state, position from model_checkpoints where name = %s", (name,)
    ).fetchone()
    return None if row is None else (bytes(row[0]), dict(row[1]))


def list_checkpoints(conn: Connection) -> list[dict[str, Any]]:
    """Every online model's checkpoint without its state: name, position (plant hour ``t_h`` and
    the model's summary), updated_at."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("select name, position, updated_at from model_checkpoints order by name")
        return cur.fetchall()


def save_checkpoint(conn: Connection, name: str, state: bytes, position: dict[str, Any]) -> None:
    """Replace an online model's saved state and position."""
    conn.execute(
        "insert into model_checkpoints (name, state, position, updated_at) values (%s, %s, %s, now())"
        " on conflict (name) do update set state = excluded.state, position = excluded.position,"
        " updated_at = now()",
        (name, state, Jsonb(position)),
    )


def put_version(
    conn: Connection, name: str, version: int, fields: VersionFields, *, created_at: datetime
) -> int:
    """Store a version with a given number and time (imported history; its metrics replaced if it
    exists); returns its id. New models go through :func:`insert_version`."""
    return _insert(
        conn,
        name,
        version,
        created_at,
        fields,
        " on conflict (name, version) do update set metrics = excluded.metrics",
    )


def record_alias(
    conn: Connection, name: str, alias: str, version_id: int, *, at: datetime, actor: str
) -> None:
    """Point ``alias`` at a version as history recorded it (alias row + its history, no audit)."""
    conn.execute(
        "insert into model_aliases (name, alias, version_id, updated_at) values (%s, %s, %s, %s)"
        " on conflict (name, alias) do update set version_id = excluded.version_id",
        (name, alias, version_id, at),
    )
    conn.execute(
        "insert into model_alias_history (name, alias, version_id, actor, at)"
        " values (%s, %s, %s, %s, %s)",
        (name, alias, version_id, actor, at),
    )

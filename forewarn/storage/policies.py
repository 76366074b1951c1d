"""Alert policy versions: store, read, list and promote (the live one drives the alert engine).

A policy version is immutable (``alert_policies``); ``alert_policy_live`` holds the one the alert
engine uses from its next pass. A promotion moves it in the caller's transaction, under a row
lock, and records the move in ``alert_policy_history`` and ``audit_log``.
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from forewarn.errors import NotFound

_COLUMNS = "version, created_at, source, policy, figures, backtest_id, note"


def save_policy(
    conn: Connection,
    policy: dict[str, Any],
    *,
    source: str,
    figures: dict[str, Any] | None = None,
    backtest_id: int | None = None,
    note: str | None = None,
) -> int:
    """Store a new policy version (a ``PolicySet.to_dict()``); returns its version number."""
    row = conn.execute(
        "insert into alert_policies (source, policy, figures, backtest_id, note)"
        " values (%s, %s, %s, %s, %s) returning version",
        (source, Jsonb(policy), Jsonb(figures or {}), backtest_id, note),
    ).fetchone()
    assert row is not None
    return int(row[0])


def get_policy(conn: Connection, version: int) -> dict[str, Any] | None:
    """One stored version, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"select {_COLUMNS} from alert_policies where version = %s", (version,))
        return cur.fetchone()


def live_policy(conn: Connection) -> dict[str, Any] | None:
    """The live version with when and by whom it was promoted, or None (settings' default)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select p.version, p.created_at, p.source, p.policy, p.figures, p.backtest_id, p.note,"
            " l.promoted_at, l.promoted_by from alert_policy_live l"
            " join alert_policies p on p.version = l.version where l.id = 1"
        )
        return cur.fetchone()


def list_policies(conn: Connection, limit: int = 50) -> list[dict[str, Any]]:
    """Stored versions, newest first, each marked ``live`` or not."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"select {_COLUMNS}, coalesce(version = (select version from alert_policy_live"
            " where id = 1), false) as live from alert_policies order by version desc limit %s",
            (limit,),
        )
        return cur.fetchall()


def promote_policy(conn: Connection, version: int, *, actor: str) -> dict[str, Any]:
    """Make ``version`` the live policy (audited). Raises NotFound for an unknown version."""
    if get_policy(conn, version) is None:
        raise NotFound(f"no alert policy version {version}")
    conn.execute("select pg_advisory_xact_lock(hashtextextended('alert_policy_live', 0))")
    row = conn.execute("select version from alert_policy_live where id = 1").fetchone()
    previous = None if row is None else int(row[0])
    change = {"version": version, "previous_version": previous}
    if previous == version:
        return change
    conn.execute(
        "insert into alert_policy_live (id, version, promoted_at, promoted_by)"
        " values (1, %s, now(), %s) on conflict (id) do update set version = excluded.version,"
        " promoted_at = excluded.promoted_at, promoted_by = excluded.promoted_by",
        (version, actor),
    )
    conn.execute(
        "insert into alert_policy_history (actor, version, previous_version) values (%s, %s, %s)",
        (actor, version, previous),
    )
    conn.execute(
        "insert into audit_log (actor, action, target, detail) values (%s, %s, %s, %s)",
        (actor, "alert_policy.promote", str(version), Jsonb(change)),
    )
    return change


def policy_overview(conn: Connection, fallback: dict[str, Any]) -> dict[str, Any]:
    """What ``forewarn policy show`` and ``GET /v1/policy`` print: the live version and figures.

    ``fallback`` is the settings' policy, shown (version null) while none has been promoted.
    """
    live = live_policy(conn)
    versions = [
        {k: r[k] for k in ("version", "created_at", "source", "live", "note")}
        for r in list_policies(conn, limit=20)
    ]
    if live is None:
        return {
            "version": None,
            "source": "settings",
            "policy": fallback,
            "figures": {},
            "promoted_at": None,
            "promoted_by": None,
            "versions": versions,
        }
    return {
        "version": int(live["version"]),
        "source": live["source"],
        "policy": live["policy"],
        "figures": live["figures"],
        "backtest_id": live["backtest_id"],
        "promoted_at": live["promoted_at"],
        "promoted_by": live["promoted_by"],
        "versions": versions,
    }

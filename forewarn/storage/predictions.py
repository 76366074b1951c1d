"""Predictions: the scorer's rows, the holdout's failure probabilities, and the backtest's reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import Connection


def insert_predictions(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert scorer rows (machine_id, ts, role, model_version_id, failure_prob, rul_h, rul_low_h,
    rul_high_h, anomaly, mode, contributions, data_quality); an existing (machine, ts, role) is kept.
    Returns the rows offered."""
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.executemany(
            "insert into predictions (machine_id, ts, role, model_version_id, failure_prob, rul_h,"
            " rul_low_h, rul_high_h, anomaly, mode, contributions, data_quality)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) on conflict do nothing",
            rows,
        )
    return len(rows)


def upsert_failure_probs(
    conn: Connection,
    machine_ids: Sequence[str],
    times: Sequence[datetime],
    probs: Sequence[float],
    role: str,
) -> None:
    """COPY failure probabilities of one role; an existing (machine, ts, role) gets the new value."""
    with conn.cursor() as cur:
        cur.execute(
            "create temp table if not exists predictions_stage"
            " (machine_id text, ts timestamptz, failure_prob double precision)"
            " on commit delete rows"
        )
        with cur.copy("copy predictions_stage (machine_id, ts, failure_prob) from stdin") as copy:
            for row in zip(machine_ids, times, probs, strict=True):
                copy.write_row(row)
        cur.execute(
            "insert into predictions (machine_id, ts, role, failure_prob)"
            " select machine_id, ts, %s, failure_prob from predictions_stage"
            " on conflict (machine_id, ts, role) do update set failure_prob = excluded.failure_prob",
            (role,),
        )


def champion_scored(
    conn: Connection, machine_ids: Sequence[str], times: Sequence[datetime]
) -> set[str]:
    """The machines among ``machine_ids`` whose paired time already has a champion prediction."""
    done = conn.execute(
        "select machine_id from predictions p join unnest(%s::text[], %s::timestamptz[]) as l(m, ts)"
        " on p.machine_id = l.m and p.ts = l.ts where p.role = 'champion'",
        (list(machine_ids), list(times)),
    ).fetchall()
    return {r[0] for r in done}


def available_scores(
    conn: Connection, since: datetime, until: datetime, role: str, available_after_h: float
) -> list[tuple[str, datetime, float]]:
    """(machine, time it became available, failure_prob) of one role inside [since, until].

    Predictions flagged with a data-quality problem are left out (the alert engine ignores them).
    """
    rows = conn.execute(
        "select machine_id, t, failure_prob from (select machine_id, failure_prob,"
        " ts + make_interval(secs => %s) as t from predictions where role = %s"
        " and failure_prob is not null and data_quality = 'ok') p"
        " where t >= %s and t <= %s",
        (available_after_h * 3600.0, role, since, until),
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def prediction_span(conn: Connection, role: str) -> tuple[datetime, datetime] | None:
    """First and last prediction time of one role (None when it has none)."""
    row = conn.execute(
        "select min(ts), max(ts) from predictions where role = %s", (role,)
    ).fetchone()
    return None if row is None or row[0] is None else (row[0], row[1])

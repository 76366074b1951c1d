"""SQL of the streaming scorer and the streaming alert path (checkpoints, new readings, pass log)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb


def new_readings(
    conn: Connection, last_seq: dict[str, int], since: datetime
) -> list[tuple[str, int, datetime, int | None, str]]:
    """(machine, seq, ts, regime, values as JSON text) after each machine's ``last_seq`` (-1 = none)
    and with ts > ``since``, by machine and seq (the primary key's index serves it)."""
    if not last_seq:
        return []
    rows = conn.execute(
        "select r.machine_id, r.seq, r.ts, r.regime, r.values::text"
        " from unnest(%s::text[], %s::bigint[]) as w(m, s)"
        " join readings r on r.machine_id = w.m and r.seq > w.s and r.ts > %s"
        " order by r.machine_id, r.seq",
        (list(last_seq), list(last_seq.values()), since),
    ).fetchall()
    return [(r[0], int(r[1]), r[2], r[3], r[4]) for r in rows]


def checkpoint_versions(conn: Connection, partitions: Sequence[int]) -> dict[int, int]:
    """Inside a transaction: lock the partitions' checkpoint rows; partition -> version."""
    rows = conn.execute(
        "select partition, version from stream_checkpoints where partition = any(%s)"
        " order by partition for update",
        (list(partitions),),
    ).fetchall()
    return {int(r[0]): int(r[1]) for r in rows}


def load_checkpoint(conn: Connection, partition: int) -> tuple[int, int, bytes, bytes] | None:
    """(partitions, version, baselines state, positions) of a partition's checkpoint."""
    row = conn.execute(
        "select partitions, version, state, coalesce(positions, ''::bytea)"
        " from stream_checkpoints where partition = %s",
        (partition,),
    ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]), bytes(row[2]), bytes(row[3]))


def save_checkpoints(conn: Connection, rows: Sequence[tuple[int, int, int, bytes, bytes]]) -> None:
    """(partition, partitions, version, state, positions) rows, inserted or replaced.

    An empty ``state`` keeps the stored one (baselines are saved less often than positions).
    """
    if not rows:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "insert into stream_checkpoints (partition, partitions, version, state, positions,"
            " updated_at) values (%s, %s, %s, %s, %s, clock_timestamp())"
            " on conflict (partition) do update set partitions = excluded.partitions,"
            " version = excluded.version, positions = excluded.positions,"
            " state = case when octet_length(excluded.state) > 0 then excluded.state"
            "   else stream_checkpoints.state end, updated_at = excluded.updated_at",
            rows,
        )


def insert_stream_predictions(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> int:
    """(machine, ts, failure_prob, anomaly, contributions) rows as role 'stream' predictions."""
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.executemany(
            "insert into predictions (machine_id, ts, role, failure_prob, anomaly, mode,"
            " contributions, data_quality) values (%s, %s, 'stream', %s, %s, 'anomaly', %s, 'ok')"
            " on conflict do nothing",
            [(m, ts, p, a, Jsonb(c)) for m, ts, p, a, c in rows],
        )
    return len(rows)


def log_passes(
    conn: Connection,
    *,
    service: str,
    worker: str,
    started_at: datetime,
    passes: Sequence[dict[str, Any]],
) -> None:
    """One row per partition that scored something in a pass (see migration 130)."""
    if not passes:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "insert into score_passes (service, worker, partition, started_at, machines,"
            " first_seq, last_seq, readings) values (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    service,
                    worker,
                    p["partition"],
                    started_at,
                    p["machines"],
                    p["first_seq"],
                    p["last_seq"],
                    p["readings"],
                )  # fmt: skip
                for p in passes
            ],
        )


def trim_pass_log(conn: Connection, keep_s: float) -> int:
    """Delete pass-log rows older than ``keep_s`` seconds (the log grows with the fleet)."""
    return conn.execute(
        "delete from score_passes where finished_at < clock_timestamp() - make_interval(secs => %s)",
        (keep_s,),
    ).rowcount


# --- streaming alerts -------------------------------------------------------------------------


def unapplied_stream_predictions(conn: Connection, since: datetime) -> list[dict[str, Any]]:
    """Streaming predictions with ts > ``since`` that their machine's alert state has not applied
    yet (ts after its ``last_ts``), by machine and ts, each with that state (``consecutive_high``,
    ``active``, ``last_ts``; None for a machine without one).

    Only what changed comes back, whatever the fleet size: rows already applied are left out by
    the server, and ``since`` (with the ts index) bounds the scan.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select p.machine_id, p.ts, p.failure_prob, p.anomaly, p.contributions,"
            " p.data_quality, s.consecutive_high, s.active, s.last_ts"
            " from predictions p left join alert_stream_state s on s.machine_id = p.machine_id"
            " where p.role = 'stream' and p.ts > %s and (s.last_ts is null or p.ts > s.last_ts)"
            " order by p.machine_id, p.ts",
            (since,),
        )
        return cur.fetchall()


def save_stream_states(
    conn: Connection, states: Sequence[tuple[str, int, bool, datetime]], *, now: datetime
) -> None:
    """Upsert (machine, consecutive_high, active, last_ts) rows in one statement."""
    if not states:
        return
    cols = list(zip(*states, strict=True))
    conn.execute(
        "insert into alert_stream_state (machine_id, consecutive_high, active, last_ts,"
        " updated_at) select m, n, a, t, %s"
        " from unnest(%s::text[], %s::int[], %s::bool[], %s::timestamptz[]) as u(m, n, a, t)"
        " on conflict (machine_id) do update"
        " set consecutive_high = excluded.consecutive_high, active = excluded.active,"
        " last_ts = excluded.last_ts, updated_at = excluded.updated_at",
        (now, *(list(c) for c in cols)),
    )

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


def machines_by_type(conn: Connection) -> dict[str, list[str]]:
    """Machine ids of each type."""
    out: dict[str, list[str]] = {}
    for m, t in conn.execute("select id, type_id from machines order by id").fetchall():
        out.setdefault(t, []).append(m)
    return out


# --- streaming alerts -------------------------------------------------------------------------


def new_stream_predictions(
    conn: Connection, machine_ids: Sequence[str], since: datetime
) -> list[dict[str, Any]]:
    """Streaming predictions of the machines with ts > ``since``, by machine and ts."""
    if not machine_ids:
        return []
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select machine_id, ts, failure_prob, anomaly, contributions, data_quality"
            " from predictions where role = 'stream' and ts > %s and machine_id = any(%s)"
            " order by machine_id, ts",
            (since, list(machine_ids)),
        )
        return cur.fetchall()


def load_stream_states(
    conn: Connection, machine_ids: Sequence[str]
) -> dict[str, tuple[int, bool, datetime]]:
    rows = conn.execute(
        "select machine_id, consecutive_high, active, last_ts from alert_stream_state"
        " where machine_id = any(%s)",
        (list(machine_ids),),
    ).fetchall()
    return {r[0]: (int(r[1]), bool(r[2]), r[3]) for r in rows}


def save_stream_states(
    conn: Connection, states: Sequence[tuple[str, int, bool, datetime]], *, now: datetime
) -> None:
    if not states:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "insert into alert_stream_state (machine_id, consecutive_high, active, last_ts,"
            " updated_at) values (%s, %s, %s, %s, %s) on conflict (machine_id) do update"
            " set consecutive_high = excluded.consecutive_high, active = excluded.active,"
            " last_ts = excluded.last_ts, updated_at = excluded.updated_at",
            [(*s, now) for s in states],
        )

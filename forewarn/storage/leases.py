"""Partition leases in PostgreSQL: heartbeats, claims with expiry, release, and the write fence.

A worker heartbeats (``worker_heartbeats``), computes its target partitions from the live workers
(`forewarn.partitions.owned_by`), releases the partitions it holds but should not, and claims its
targets: a claim succeeds when the partition is free, expired, or already its own (then it is
renewed). A killed worker stops renewing; its leases expire after ``lease_s`` and the workers that
now target them take them over on their next tick.

Every write a partition leads to runs in a transaction that first calls :func:`fence`, which locks
the lease row while the lease is still this worker's. A claim by another worker waits on that lock
until the write committed (then finds what it wrote), and a worker whose lease was taken finds the
fence closed and writes nothing. Times are the database's ``clock_timestamp()``, one clock for all.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import Connection


def heartbeat(conn: Connection, service: str, worker: str, lease_s: float) -> list[str]:
    """Record that ``worker`` is alive; return the live workers of ``service`` (itself included)."""
    conn.execute(
        "insert into worker_heartbeats (service, worker, seen_at)"
        " values (%s, %s, clock_timestamp())"
        " on conflict (service, worker) do update set seen_at = excluded.seen_at",
        (service, worker),
    )
    conn.execute(
        "delete from worker_heartbeats where service = %s"
        " and seen_at < clock_timestamp() - make_interval(secs => %s)",
        (service, 10 * lease_s),
    )
    rows = conn.execute(
        "select worker from worker_heartbeats where service = %s"
        " and seen_at >= clock_timestamp() - make_interval(secs => %s) order by worker",
        (service, lease_s),
    ).fetchall()
    return [r[0] for r in rows]


def claim(
    conn: Connection, service: str, worker: str, partitions: Sequence[int], lease_s: float
) -> list[int]:
    """Take or renew the leases on ``partitions`` that are free, expired or ours; return those held."""
    if not partitions:
        return []
    rows = conn.execute(
        "insert into partition_leases (service, partition, worker, expires_at)"
        " select %(s)s, p, %(w)s, clock_timestamp() + make_interval(secs => %(l)s)"
        " from unnest(%(ps)s::int[]) as p"
        " on conflict (service, partition) do update"
        " set worker = excluded.worker, expires_at = excluded.expires_at"
        " where partition_leases.worker = excluded.worker"
        "    or partition_leases.expires_at < clock_timestamp()"
        " returning partition",
        {"s": service, "w": worker, "l": lease_s, "ps": list(partitions)},
    ).fetchall()
    return sorted(int(r[0]) for r in rows)


def release(conn: Connection, service: str, worker: str, partitions: Sequence[int]) -> None:
    """Give up leases (rebalancing after a worker joined, or a clean stop)."""
    if partitions:
        conn.execute(
            "delete from partition_leases where service = %s and worker = %s"
            " and partition = any(%s)",
            (service, worker, list(partitions)),
        )


def leave(conn: Connection, service: str, worker: str) -> None:
    """A clean stop: drop the heartbeat and every lease, so others take over at once."""
    conn.execute(
        "delete from partition_leases where service = %s and worker = %s", (service, worker)
    )
    conn.execute(
        "delete from worker_heartbeats where service = %s and worker = %s", (service, worker)
    )


def fence(conn: Connection, service: str, worker: str, partition: int) -> bool:
    """Inside a transaction: lock our unexpired lease on ``partition`` until commit; False if not ours."""
    return bool(fence_many(conn, service, worker, [partition]))


def fence_many(conn: Connection, service: str, worker: str, partitions: Sequence[int]) -> list[int]:
    """:func:`fence` for several partitions at once; returns those that are ours (locked)."""
    if not partitions:
        return []
    rows = conn.execute(
        "select partition from partition_leases where service = %s and worker = %s"
        " and partition = any(%s) and expires_at > clock_timestamp()"
        " order by partition for update",
        (service, worker, list(partitions)),
    ).fetchall()
    return [int(r[0]) for r in rows]


def holders(conn: Connection, service: str) -> dict[int, str]:
    """Partition -> worker of the unexpired leases (for status and tests)."""
    rows = conn.execute(
        "select partition, worker from partition_leases where service = %s"
        " and expires_at > clock_timestamp()",
        (service,),
    ).fetchall()
    return {int(r[0]): str(r[1]) for r in rows}

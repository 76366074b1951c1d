"""One worker's share of the fleet: heartbeat, rebalance, claim and renew partition leases.

`LeaseKeeper.tick` runs at the start of every pass of a partitioned service (`forewarn score`,
`forewarn alerts run`). It returns the partitions this worker holds now; the service then does
each partition's work in a transaction that starts with `forewarn.storage.leases.fence`.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass, field

from psycopg import Connection

from forewarn.partitions import owned_by
from forewarn.storage import leases

log = logging.getLogger(__name__)


def worker_id() -> str:
    """A worker name unique across hosts and restarts: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class LeaseKeeper:
    service: str
    partitions: int
    lease_s: float
    worker: str = field(default_factory=worker_id)
    held: list[int] = field(default_factory=list)

    def tick(self, conn: Connection) -> list[int]:
        """Heartbeat, give up partitions that now belong to others, claim our targets."""
        with conn.transaction():
            live = leases.heartbeat(conn, self.service, self.worker, self.lease_s)
            target = owned_by(self.worker, live, self.partitions)
            leases.release(
                conn,
                self.service,
                self.worker,
                [p for p in range(self.partitions) if p not in target],
            )
            held = leases.claim(conn, self.service, self.worker, target, self.lease_s)
        if held != self.held:
            log.info(
                "%s worker %s holds %d/%d partitions (%d live workers)",
                self.service,
                self.worker,
                len(held),
                self.partitions,
                len(live),
            )
        self.held = held
        return held

    def leave(self, conn: Connection) -> None:
        """Clean stop: release everything at once instead of waiting for expiry."""
        with conn.transaction():
            leases.leave(conn, self.service, self.worker)
        self.held = []

    def leave_url(self, url: str) -> None:
        """:meth:`leave` on a connection of its own (at exit); if the database is away, leases expire."""
        from forewarn.storage.db import connect

        try:
            with connect(url, autocommit=True) as conn:
                self.leave(conn)
        except Exception as exc:  # noqa: BLE001 - the leases then expire on their own
            log.warning("%s: could not release leases (%s); they expire", self.service, exc)

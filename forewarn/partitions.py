"""Which worker scores which machines: a stable hash into partitions, partitions spread over workers.

Pure functions, no I/O. A machine's partition depends only on its id and the partition count
(crc32, the same in every process and release), so a partition's state can move between workers.
Partitions go round-robin over the sorted live workers: every worker computes the same assignment
from the same list, and the lease table (`forewarn.storage.leases`) makes sure that only one of
them acts on a partition at a time while the list changes.

>>> partition_of("cnc-001", 16) == partition_of("cnc-001", 16)
True
>>> assignment(["b", "a"], 4)
{0: 'a', 1: 'b', 2: 'a', 3: 'b'}
>>> owned_by("a", ["a", "b"], 4)
[0, 2]
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence


def partition_of(machine_id: str, partitions: int) -> int:
    """The partition of a machine (stable across processes and releases)."""
    return zlib.crc32(machine_id.encode()) % partitions


def assignment(workers: Iterable[str], partitions: int) -> dict[int, str]:
    """Partition -> worker, round-robin over the sorted worker ids (empty without workers)."""
    ws = sorted(set(workers))
    return {p: ws[p % len(ws)] for p in range(partitions)} if ws else {}


def owned_by(worker: str, workers: Iterable[str], partitions: int) -> list[int]:
    """The partitions ``worker`` should hold when ``workers`` are alive."""
    return [p for p, w in assignment(workers, partitions).items() if w == worker]


def split(machine_ids: Sequence[str], partitions: int) -> dict[int, list[str]]:
    """Machines grouped by partition (every partition present, possibly empty)."""
    out: dict[int, list[str]] = {p: [] for p in range(partitions)}
    for m in machine_ids:
        out[partition_of(m, partitions)].append(m)
    return out

"""`forewarn bench storage`: bytes per stored reading, before and after closed chunks are compacted.

In a throwaway schema, ``machines`` of the fleet benchmark's machine mix write ``seconds`` readings
each at 1 Hz, with the fleet publisher's values (noise around a mid-range level, three decimals),
through the ingest writer (:func:`~forewarn.storage.readings.write_readings`), all machines per
committed batch as ingest commits them. One more reading per machine the next day, three hours in,
closes the first day's chunk. Bytes per reading (heap and TOAST, each index) are read from the
catalog once the day is written and again after
:func:`~forewarn.storage.compaction.compact_closed_chunks`; on plain PostgreSQL the second equals
the first (nothing is compacted there).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import psycopg

from forewarn.storage import bench_figures as bf
from forewarn.storage.assets import upsert_registry
from forewarn.storage.compaction import compact_closed_chunks
from forewarn.storage.readings import EncodedReading, write_readings
from forewarn.storage.schemas import temporary_schema
from forewarn.storage.timescale import timescale_license
from tools.bench.fleet import plan_fleet

DAY = datetime(2026, 3, 2, tzinfo=UTC)  # a chunk boundary (1-day chunks)
BATCH_ROWS = 5000  # about what ingest commits at a time under load


def _figures(conn: psycopg.Connection) -> dict[str, Any]:
    n = bf.count_readings(conn)
    heap, idx, total = bf.table_bytes(conn, "readings")
    per_index = bf.index_bytes(conn, "readings")
    return {
        "bytes_per_reading": round(total / n, 1),
        "heap_and_toast_bytes": round(heap / n, 1),
        "index_bytes": round(idx / n, 1),
        "index_bytes_by_index": {k: round(v / n, 1) for k, v in per_index.items()},
        "gb_per_1000_machines_month": round(total / n * 86400 * 30 * 1000 / 1e9, 1),
    }


def run_storage_bench(server_url: str, machines: int, seconds: int) -> dict[str, Any]:
    """Bytes per reading of ``machines`` x ``seconds`` readings, before and after compaction."""
    reg, plan = plan_fleet(machines, 0, float(seconds))
    rng = np.random.default_rng(7)
    names = [[s[0] for s in sensors] for _, _, sensors in plan.machines]
    mu = [
        np.array([lo + rng.uniform(0.3, 0.6) * (hi - lo) for _, lo, hi in s])
        for _, _, s in plan.machines
    ]
    sd = [np.array([0.004 * (hi - lo) for _, lo, hi in s]) for _, _, s in plan.machines]
    per_batch = max(1, BATCH_ROWS // machines)
    with temporary_schema(server_url, "bstor") as url, psycopg.connect(url) as conn:
        upsert_registry(conn, reg)
        conn.commit()
        t0 = time.perf_counter()
        for first in range(0, seconds, per_batch):
            rows: list[EncodedReading] = []
            for s in range(first, min(seconds, first + per_batch)):
                ts = DAY + timedelta(seconds=s)
                for i, (m, _, _) in enumerate(plan.machines):
                    v = np.round(mu[i] + sd[i] * rng.standard_normal(len(mu[i])), 3).tolist()
                    rows.append(
                        (
                            m,
                            s + 1,
                            ts,
                            None,
                            orjson.dumps(dict(zip(names[i], v, strict=True))).decode(),
                        )
                    )
            write_readings(conn, rows, reorder_window=1000)
            conn.commit()
        write_s = time.perf_counter() - t0
        nxt = DAY + timedelta(days=1, hours=3)
        write_readings(
            conn,
            [(m, seconds + 1, nxt, None, "{}") for m, _, _ in plan.machines],
            reorder_window=1000,
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("vacuum analyze readings")
        before = _figures(conn)
        t1 = time.perf_counter()
        compacted = compact_closed_chunks(conn, nxt)
        compact_s = time.perf_counter() - t1
        after = _figures(conn)
        sizes = bf.value_sizes(conn)
        return {
            "machines": machines,
            "seconds": seconds,
            "readings": bf.count_readings(conn),
            "timescaledb_license": timescale_license(conn),
            "write_s": round(write_s, 1),
            "chunks_compacted": compacted,
            "compact_s": round(compact_s, 1),
            "before": before,
            "after": after,
            "values_jsonb_bytes": round(sizes[0], 1),
            "values_float4_array_bytes": round(sizes[1], 1),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

"""`forewarn bench import`: history import of a wide historian CSV, rows per second and peak memory.

Writes a wide CSV (one column per sensor, ``--machines`` machines, one row per machine a minute),
registers its machines in a throwaway schema of the configured database, then times
``forewarn import readings`` on it (the same function, through COPY, in this process) while a
thread samples the process's resident memory. A second import of the same file checks that it
stores nothing twice. The figures cover the import only (the CSV is generated before the clock
starts); ``peak_rss_mb`` is the highest resident set size sampled during the import.
``importer_cpu_s`` and ``server_cpu_s`` (the PostgreSQL backend's, when it runs on this host) are
the CPU seconds the import used: on a shared machine they say what the wall-clock rate cannot.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from forewarn.asset_file import AssetFile

SENSORS: tuple[tuple[str, str, float, float, float, float], ...] = (
    # name, unit, min, max, typical, noise
    ("bearing_temp", "degC", -40.0, 200.0, 65.0, 3.0),
    ("oil_temp", "degC", -40.0, 200.0, 55.0, 2.0),
    ("vibration_rms", "mm/s", 0.0, 100.0, 4.0, 0.8),
    ("pressure", "bar", 0.0, 400.0, 180.0, 5.0),
    ("flow", "m3/h", 0.0, 500.0, 120.0, 6.0),
    ("motor_current", "A", 0.0, 400.0, 85.0, 4.0),
    ("speed", "rpm", 0.0, 4000.0, 1480.0, 10.0),
    ("power", "kW", 0.0, 1000.0, 250.0, 8.0),
)
START = datetime(2025, 1, 1, tzinfo=UTC)
CHUNK_ROWS = 100_000


def asset_file(machines: int) -> AssetFile:
    """One site, one pump type with the bench's sensors, ``machines`` machines."""
    return AssetFile.model_validate(
        {
            "sites": [{"id": "bench", "name": "Import bench"}],
            "machine_types": [
                {
                    "id": "bench-pump",
                    "name": "Bench pump",
                    "sensors": [
                        {"name": n, "unit": u, "min": lo, "max": hi}
                        for n, u, lo, hi, _, _ in SENSORS
                    ],
                    "failure_modes": ["bearing"],
                }
            ],
            "machines": [
                {"id": f"p{i:04d}", "site": "bench", "type": "bench-pump"} for i in range(machines)
            ],
        }
    )


def write_wide_csv(path: Path, rows: int, machines: int, seed: int = 0) -> None:
    """A historian-style wide export: machine, ts (ISO 8601 UTC), one column per sensor."""
    rng = np.random.default_rng(seed)
    names = [s[0] for s in SENSORS]
    typical = np.array([s[4] for s in SENSORS])
    noise = np.array([s[5] for s in SENSORS])
    ids = np.array([f"p{i:04d}" for i in range(machines)], dtype=object)
    with path.open("w", encoding="utf-8") as f:
        f.write("machine,ts," + ",".join(names) + "\n")
        for lo in range(0, rows, CHUNK_ROWS):
            n = min(CHUNK_ROWS, rows - lo)
            k = np.arange(lo, lo + n)
            minute = k // machines
            ts = np.datetime64(START.replace(tzinfo=None), "s") + minute.astype("timedelta64[m]")
            stamps = np.datetime_as_string(ts, unit="s")
            vals = typical + noise * rng.standard_normal((n, len(SENSORS)))
            lines = [
                f"{m},{t}Z," + ",".join(f"{x:.3f}" for x in v)
                for m, t, v in zip(ids[k % machines], stamps, vals.tolist(), strict=True)
            ]
            f.write("\n".join(lines) + "\n")


def _server_cpu_s(pid: int) -> float | None:
    """CPU seconds of a PostgreSQL backend on this host (None when it is elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _PeakRss:
    """Samples this process's resident set size every ``every_s`` until stopped."""

    def __init__(self, every_s: float = 0.05) -> None:
        import psutil

        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def bench_import(
    server_url: str, *, rows: int, machines: int, batch_rows: int, keep: Path | None = None
) -> dict[str, Any]:
    """Generate, import (timed, memory sampled), re-import; the figures as a dict."""
    from forewarn.storage.assets import apply_assets
    from forewarn.storage.db import connect
    from forewarn.storage.readings import count_readings
    from forewarn.storage.schemas import temporary_schema
    from ingest.history_import import import_readings
    from ingest.import_files import ImportMapping

    with tempfile.TemporaryDirectory(prefix="forewarn-bench-import-") as tmp:
        path = (keep or Path(tmp)) / f"wide-{rows}.csv"
        t0 = time.monotonic()
        write_wide_csv(path, rows, machines)
        generate_s = time.monotonic() - t0
        with temporary_schema(server_url, "bench_import") as url, connect(url) as conn:
            apply_assets(conn, asset_file(machines), actor="bench", now=datetime.now(UTC))
            load_before = os.getloadavg()
            server0 = _server_cpu_s(conn.info.backend_pid)
            cpu0 = time.process_time()
            with _PeakRss() as rss:
                t1 = time.monotonic()
                first = import_readings(
                    conn,
                    path,
                    ImportMapping(),
                    now=datetime.now(UTC),
                    batch_rows=batch_rows,
                )
                seconds = time.monotonic() - t1
            importer_cpu = time.process_time() - cpu0
            server1 = _server_cpu_s(conn.info.backend_pid)
            load_after = os.getloadavg()
            again = import_readings(conn, path, ImportMapping(), now=datetime.now(UTC))
            in_db = count_readings(conn)
        size_mb = path.stat().st_size / 2**20
    return {
        "rows": first.rows,
        "stored": first.stored,
        "rejected": first.rejected,
        "rows_per_s": round(first.rows / seconds),
        "peak_rss_mb": round(rss.peak / 2**20, 1),
        "seconds": round(seconds, 2),
        "file_mb": round(size_mb, 1),
        "machines": machines,
        "sensors": len(SENSORS),
        "batch_rows": batch_rows,
        "readings_in_db": in_db,
        "reimport_stored": again.stored,
        "reimport_duplicates": again.duplicates,
        "reimport_rows_per_s": round(again.rows / again.seconds) if again.seconds else None,
        "generate_s": round(generate_s, 1),
        # CPU actually spent, independent of how many other processes share the cores
        "importer_cpu_s": round(importer_cpu, 1),
        "server_cpu_s": None if server0 is None or server1 is None else round(server1 - server0, 1),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
    }

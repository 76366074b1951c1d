"""Load generators for `forewarn bench api`: wrk when installed, an httpx client otherwise.

wrk (C, epoll) spends a few microseconds of CPU per request, so on a 2-core machine the figures
are the server's; the httpx client spends about 2 ms per request, which caps the rate it can
drive well below what the server can do. Both report the same keys: ``requests``, ``errors``,
``rps``, ``p50_ms``, ``p99_ms`` and ``client_cpu_ms_per_req``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from typing import Any

import httpx

WRK_THREADS = (
    1  # one epoll thread drives thousands of requests a second; the cores go to the server
)
WRK_TIMEOUT_S = 5  # wrk counts a response slower than this as a timeout error

# Each wrk thread walks the list of request paths from its own offset; the requests are formatted
# once in init(), so the per-request Lua cost is a table lookup. errors.status counts HTTP >= 400.
WRK_SCRIPT = """
local paths = %(paths)s
local key = %(key)s
local reqs = {}
local n = 0
local i = 0
local threads = 0

function setup(thread)
  thread:set("offset", threads * 7919)
  threads = threads + 1
end

function init(args)
  for _, p in ipairs(paths) do
    n = n + 1
    reqs[n] = wrk.format("GET", p, {["X-API-Key"] = key})
  end
  i = offset or 0
end

function request()
  i = i + 1
  return reqs[(i %% n) + 1]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, "write": %%d,'
    .. ' "status": %%d, "timeout": %%d, "p50_us": %%d, "p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def have_wrk() -> bool:
    """Whether the wrk binary is on PATH (Debian package ``wrk``)."""
    return shutil.which("wrk") is not None


def _lua_str(s: str) -> str:
    return json.dumps(s)  # a JSON string of ASCII text is a valid Lua string literal


def wrk_load(
    base: str, key: str, paths: list[str], *, duration_s: float, connections: int
) -> dict[str, Any]:
    """Run wrk for ``duration_s`` seconds with ``connections`` keep-alive connections on loopback."""
    if not base.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise ValueError(f"the benchmark loads loopback only, not {base}")
    lua = WRK_SCRIPT % {
        "paths": "{" + ", ".join(_lua_str(p) for p in paths) + "}",
        "key": _lua_str(key),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
        script = f.name
    try:
        cmd = [
            "wrk",
            f"--threads={min(WRK_THREADS, connections)}",
            f"--connections={connections}",
            f"--duration={max(1, round(duration_s))}s",
            f"--timeout={WRK_TIMEOUT_S}s",
            f"--script={script}",
            base + paths[0],
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # wait4 gives the CPU wrk itself used, so the report shows the client's share
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out = proc.stdout.read() if proc.stdout else ""
        err = proc.stderr.read() if proc.stderr else ""
    finally:
        os.unlink(script)
    line = next((ln for ln in out.splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.strip() or out.strip()}")
    w = json.loads(line.removeprefix("WRKJSON "))
    n = int(w["requests"])
    socket_errors = w["connect"] + w["read"] + w["write"] + w["timeout"]
    return {
        "requests": n,
        "errors": int(w["status"] + socket_errors),
        "rps": round(n / (w["duration_us"] / 1e6), 1),
        "p50_ms": round(w["p50_us"] / 1000, 2),
        "p99_ms": round(w["p99_us"] / 1000, 2),
        "max_ms": round(w["max_us"] / 1000, 2),
        "client_cpu_ms_per_req": round((usage.ru_utime + usage.ru_stime) * 1000 / max(1, n), 4),
        "load_generator": "wrk",
        "connections": connections,
        "duration_s": round(w["duration_us"] / 1e6, 2),
    }


async def _httpx_load(base: str, key: str, paths: list[str], concurrency: int) -> dict[str, Any]:
    lat: list[float] = []
    errors = 0
    it = iter(paths)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base, headers={"X-API-Key": key}, limits=limits, timeout=10.0
    ) as client:

        async def worker() -> None:
            nonlocal errors
            for path in it:
                t0 = time.perf_counter()
                try:
                    r = await client.get(path)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                lat.append(time.perf_counter() - t0)
                errors += not ok

        t0 = time.perf_counter()
        c0 = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
        client_cpu = time.process_time() - c0
    lat.sort()
    n = len(lat)
    return {
        "requests": n,
        "errors": errors,
        "rps": round(n / elapsed, 1),
        "p50_ms": round(lat[n // 2] * 1000, 2),
        "p99_ms": round(lat[min(n - 1, int(n * 0.99))] * 1000, 2),
        "max_ms": round(lat[-1] * 1000, 2),
        "client_cpu_ms_per_req": round(client_cpu * 1000 / max(1, n), 4),
        "load_generator": "httpx",
        "connections": concurrency,
        "duration_s": round(elapsed, 2),
    }


def httpx_load(base: str, key: str, paths: list[str], *, concurrency: int) -> dict[str, Any]:
    """Send every path once, ``concurrency`` in flight, from this process (the fallback)."""
    return asyncio.run(_httpx_load(base, key, paths, concurrency))

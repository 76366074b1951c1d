"""`forewarn bench dashboard --browser`: what a person waits for, timed in Debian's Chromium.

Seeds the 500-machine week into a scratch schema, starts `forewarn dashboard` on it, logs in as a
person and visits the pages round-robin through the sidebar, as a user clicks. Each visit is timed
from the click until the page is drawn: its header shows, Streamlit has finished the run (no
running indicator) and every Plotly chart on the page has drawn its SVG (at least the number of
charts the page draws on this data). Per page: ``first_s`` (the first, cold visit), ``p50_s`` and
``p95_s`` over the later visits. The machine is shared, so the load average is reported beside them.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from forewarn.broker import free_port
from forewarn.storage.people import create_user
from forewarn.storage.rollups import refresh_rollups
from forewarn.storage.schemas import temporary_schema
from tools.seed import seed_history

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAGES = {  # nav label -> (header, Plotly charts the page draws on the seeded week)
    "Fleet": ("Fleet health", 2),
    "Machine": ("Machine detail", 1),
    "Alerts": ("Alerts", 1),
    "Downtime & ROI": ("Downtime & ROI", 1),
    "Models": ("Model monitoring", 1),
}
TARGET_P95_S = 1.5
USER = ("Bench Person", "bench@plant.test", "bench-password-1")
DRAWN_JS = """([header, minCharts]) => {
  const h = [...document.querySelectorAll('h1, h2')].some(e => e.innerText.trim() === header);
  if (!h || document.querySelector('[data-testid="stStatusWidget"]')) return false;
  const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
  return charts.length >= minCharts && charts.every(c => c.querySelector('.main-svg'));
}"""


@contextmanager
def dashboard_server(
    url: str, log_path: Path, *, port: int | None = None, home: Path | None = None
) -> Iterator[str]:
    """`forewarn dashboard` on ``port`` (default a free one) over ``url``; yields its base URL once
    it is healthy.

    The one way the bench and the browser tests start a dashboard (no MQTT: orders are not sent).
    ``home`` becomes the server's working directory and HOME, so Streamlit reads
    ``home/.streamlit/secrets.toml`` and nothing of the real home (the OpenID Connect test).
    """
    port = port or free_port()
    env = os.environ | {"FOREWARN_DB__URL": url, "FOREWARN_LOG_LEVEL": "WARNING"}
    if home is not None:
        env["HOME"] = str(home)
    env.pop("FOREWARN_MQTT__URL", None)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "forewarn", "dashboard", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=home,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"dashboard exited: {log_path.read_text()[-2000:]}")
                try:
                    if httpx.get(f"{base}/_stcore/health", timeout=1).text == "ok":
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("dashboard did not start in 90 s")
                time.sleep(0.25)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def time_pages(base: str, *, visits: int, timeout_ms: int = 120_000) -> dict[str, dict[str, float]]:
    """Visit every page ``visits`` times round-robin; seconds from click to drawn per visit."""
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {p: [] for p in PAGES}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1400})
            page.set_default_timeout(timeout_ms)
            page.goto(base)
            page.get_by_label("E-mail", exact=True).fill(USER[1])
            page.get_by_label("Password", exact=True).fill(USER[2])
            page.get_by_role("button", name="Log in", exact=True).click()
            nav = page.locator('[data-testid="stSidebarNav"]')
            nav.wait_for()
            for _ in range(visits):
                for label, (header, charts) in PAGES.items():
                    t0 = time.perf_counter()
                    nav.get_by_text(label, exact=True).click()
                    page.wait_for_function(DRAWN_JS, arg=[header, charts], polling="raf",
                                           timeout=timeout_ms)  # fmt: skip
                    times[label].append(time.perf_counter() - t0)
        finally:
            browser.close()
    out = {}
    for label, ts in times.items():
        later = sorted(ts[1:]) or ts
        p95 = later[min(len(later) - 1, round(0.95 * (len(later) - 1)))]
        out[label] = {
            "first_s": round(ts[0], 3),
            "p50_s": round(statistics.median(later), 3),
            "p95_s": round(p95, 3),
            "visits": len(ts),
        }
    return out


def bench_dashboard_browser(
    server_url: str, *, machines: int = 500, days: float = 7.0, visits: int = 40, seed: int = 7,
    log_dir: Path = Path("test-artifacts"),
) -> dict[str, Any]:  # fmt: skip
    """Seed the week, serve the dashboard, and time each page in Chromium."""
    log_dir.mkdir(exist_ok=True)
    with temporary_schema(server_url, "bench_dash_browser") as url:
        with psycopg.connect(url) as conn:
            now = datetime.now(UTC)
            counts = seed_history(conn, machines=machines, days=days, now=now, seed=seed)
            refresh_rollups(conn, now)
            create_user(conn, name=USER[0], email=USER[1], role="operator", password=USER[2],
                        actor="bench")  # fmt: skip
            conn.commit()
        with psycopg.connect(url, autocommit=True) as conn:
            # as autovacuum leaves a bulk load: statistics, and BRIN ranges summarized (an
            # unsummarized BRIN range always matches, so ingest's pulse would scan every reading)
            conn.execute("vacuum analyze")
        load_before = os.getloadavg()
        with dashboard_server(url, log_dir / "bench-dashboard-server.log") as base:
            pages = time_pages(base, visits=visits)
        load_after = os.getloadavg()
    worst = max(p["p95_s"] for p in pages.values())
    return {
        "machines": machines,
        "days": days,
        "readings": counts["readings"],
        "predictions": counts["predictions"],
        "alerts": counts["alerts"],
        "pages": pages,
        "slowest_p95_s": worst,
        "target_p95_s": TARGET_P95_S,
        "all_pages_p95_under_target": worst <= TARGET_P95_S,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
    }

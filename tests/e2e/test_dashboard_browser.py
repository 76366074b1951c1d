"""The dashboard in a real headless Chromium: every page renders, an alert is acknowledged by a click.

Runs `forewarn dashboard` on a free port against a seeded schema, drives Debian's chromium with
Playwright (never a downloaded browser) and saves a screenshot of each page under test-artifacts/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from tests.fixtures.browser import ARTIFACTS, CHROMIUM_ARGS, UI_TIMEOUT_MS, free_port
from tests.fixtures.dashboard import SeededPlant, seeded_plant  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser

START_TIMEOUT_S = 60
PAGES = (  # nav label, header, key text that proves the data arrived
    ("Fleet", "Fleet health", "Open alerts"),
    ("Machine", "Machine detail", "Alert history"),
    ("Alerts", "Alerts", "Open and acknowledged"),
    ("Downtime & ROI", "Downtime & ROI", "Net savings"),
    ("Models", "Model monitoring", "Promotions and rollbacks"),
)


@pytest.fixture(scope="module")
def dashboard_url(seeded_plant: SeededPlant) -> Iterator[str]:  # noqa: F811
    port = free_port()
    env = os.environ | {"FOREWARN_DB__URL": seeded_plant.url, "FOREWARN_LOG_LEVEL": "WARNING"}
    log_path = ARTIFACTS / "dashboard-server.log"
    ARTIFACTS.mkdir(exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "forewarn", "dashboard", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"dashboard exited with {proc.returncode}: {log_path.read_text()}")
                try:
                    if httpx.get(f"{base}/_stcore/health", timeout=1).text == "ok":
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"dashboard did not start: {log_path.read_text()}")
                time.sleep(0.25)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _settle(page: object) -> None:
    """Wait until Streamlit has finished running the script (no 'running' indicator)."""
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
        timeout=UI_TIMEOUT_MS,
    )
    page.wait_for_timeout(500)  # type: ignore[attr-defined]  # let Plotly finish drawing


def _no_exception(page: object, where: str) -> None:
    shown = page.locator('[data-testid="stException"]')  # type: ignore[attr-defined]
    assert shown.count() == 0, f"{where}: {shown.first.inner_text()}"


def test_every_page_renders_and_an_alert_is_acknowledged(
    chromium_path: str,
    dashboard_url: str,
    seeded_plant: SeededPlant,  # noqa: F811
) -> None:
    from playwright.sync_api import expect, sync_playwright

    with psycopg.connect(seeded_plant.url) as conn:
        row = conn.execute(
            "select id from alerts where status = 'open' order by id desc limit 1"
        ).fetchone()
    assert row is not None, "the seed leaves open alerts"
    alert_id = int(row[0])  # the alerts page selects the newest open alert first

    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 2400})
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.goto(dashboard_url)
            page.get_by_label("API key").fill(seeded_plant.operator_key)
            page.get_by_role("button", name="Log in").click()
            nav = page.locator('[data-testid="stSidebarNav"]')
            expect(nav).to_be_visible()
            expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("op-ui")
            for label, header, key_text in PAGES:
                nav.get_by_text(label, exact=True).click()
                expect(page.get_by_role("heading", name=header, exact=True)).to_be_visible()
                expect(page.get_by_text(key_text).first).to_be_visible()
                _settle(page)
                _no_exception(page, label)
                if label in ("Fleet", "Machine", "Models"):
                    expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible()
                slug = label.lower().replace(" & ", "-").replace(" ", "-")
                page.screenshot(path=str(ARTIFACTS / f"dashboard-{slug}.png"), full_page=True)

            nav.get_by_text("Alerts", exact=True).click()
            expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
            _settle(page)
            picked = page.get_by_role("combobox", name="Alert", exact=True)
            expect(picked).to_have_value(re.compile(rf"^#{alert_id} · "))
            page.get_by_role("button", name="Acknowledge", exact=True).click()
            expect(page.get_by_text(f"Alert #{alert_id} is now acknowledged.")).to_be_visible()
            _settle(page)
            _no_exception(page, "after acknowledge")
            page.screenshot(
                path=str(ARTIFACTS / "dashboard-alerts-acknowledged.png"), full_page=True
            )
            page.get_by_role("button", name="Log out").click()
            expect(page.get_by_label("API key")).to_be_visible()
            expect(nav).to_have_count(0)
        finally:
            browser.close()

    with psycopg.connect(seeded_plant.url) as conn:
        status = conn.execute("select status from alerts where id = %s", (alert_id,)).fetchone()
        actor = conn.execute(
            "select actor from alert_transitions where alert_id = %s and to_status = 'acknowledged'",
            (alert_id,),
        ).fetchone()
    assert status == ("acknowledged",)
    assert actor == ("op-ui",)

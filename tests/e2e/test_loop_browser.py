"""The maintenance loop through the dashboard in a real headless Chromium.

A plant runs for real (`forewarn simulate` -> the machine's Mosquitto -> `forewarn ingest` -> a fresh
schema) with `forewarn dashboard` beside it. An operator resolves an open alert by clicks, choosing
the maintenance done; the dashboard sends the maintenance order, the simulated machine is repaired,
and the repair arrives on the Machine page.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from forewarn.clock import now_on
from forewarn.factory import load_factory
from forewarn.storage import alerts as store
from forewarn.storage.assets import upsert_registry
from forewarn.storage.keys import create_key
from forewarn.supervisor import Supervisor, forewarn_command, wait_until
from tests.fixtures.browser import ARTIFACTS, UI_TIMEOUT_MS, free_port, login_with_key

pytestmark = pytest.mark.browser

MACHINES = 8
START_TIMEOUT_S = 90
REPAIR_TIMEOUT_S = 120  # wall: a repair takes up to ~14 plant hours = 14 s, plus a loaded machine


def _count(url: str, sql: str, *args: object) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql, args).fetchone()
    return 0 if row is None else int(row[0])


def _settle(page: object) -> None:
    """Wait until Streamlit has finished running the script (no 'running' indicator)."""
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
        timeout=3 * UI_TIMEOUT_MS,  # the plant runs beside it on the same two cores
    )


def test_a_resolve_by_clicks_repairs_the_machine_and_the_repair_shows(
    browser: object, db_url: str, mqtt_url: str, topic_root: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    factory = load_factory(None, machines=MACHINES)
    with psycopg.connect(db_url) as conn:
        upsert_registry(conn, factory.registry())
        key = create_key(conn, "op-loop", "operator")
        conn.commit()
    port = free_port()
    env = {
        "FOREWARN_DB__URL": db_url,
        "FOREWARN_MQTT__URL": mqtt_url,
        "FOREWARN_MQTT__TOPIC_ROOT": topic_root,
        "FOREWARN_MQTT__CLIENT_ID": f"ingest-{uuid.uuid4().hex[:8]}",
        "FOREWARN_INGEST__METRICS_PORT": str(free_port()),
        "FOREWARN_STATE_DIR": str(tmp_path),
        "FOREWARN_LOG_LEVEL": "INFO",
    }
    with Supervisor(env=env, log_dir=tmp_path / "logs", run_dir=tmp_path / "run") as sup:
        sup.start("ingest", forewarn_command("ingest"))
        ready = f"http://127.0.0.1:{env['FOREWARN_INGEST__METRICS_PORT']}/readyz"
        assert wait_until(lambda: _ok(ready), START_TIMEOUT_S), "ingest not ready"
        sup.start("dashboard", forewarn_command("dashboard", "--port", str(port)))
        sim = sup.start(
            "simulator",
            forewarn_command(
                *("simulate", "--machines", str(MACHINES), "--speed", "3600", "--qos", "1"),
                *("--sim-hours", "100000", "--commands", "--no-progress", "--seed", "5"),
            ),
        )
        assert wait_until(lambda: _count(db_url, "select count(*) from readings") > 200, 60)
        # an alert as the engine raises it, on a machine that is running
        machine = next(m.id for m, _ in factory.machines() if m.type_id == "pump")
        with psycopg.connect(db_url) as conn:
            alert = store.insert_alert(
                conn,
                store.NewAlert(
                    machine,
                    "bearing",
                    "critical",
                    0.93,
                    30.0,
                    20.0,
                    45.0,
                    {},
                    None,
                    0.0,
                    "replace the bearing",
                ),
                actor="system",
                now=now_on(conn, "plant"),
            )
            conn.commit()
        aid = int(alert["id"])
        base = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: _ok(f"{base}/_stcore/health"), START_TIMEOUT_S)

        page = browser.new_page(viewport={"width": 1440, "height": 2200})  # type: ignore[attr-defined]
        try:
            page.set_default_timeout(2 * UI_TIMEOUT_MS)
            page.goto(base)
            login_with_key(page, key)
            nav = page.locator('[data-testid="stSidebarNav"]')
            nav.get_by_text("Alerts", exact=True).click()
            expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
            _settle(page)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "loop-alerts.png"), full_page=True)
            page.get_by_role("tab", name="Resolve").click()
            page.get_by_role("combobox", name="Maintenance done").click()
            page.get_by_role("option", name="repair", exact=True).click()
            _settle(page)
            # choosing the maintenance reran the page: the Resolve tab must still be the one shown
            expect(page.get_by_role("tab", name="Resolve")).to_have_attribute(
                "aria-selected", "true"
            )
            page.get_by_role("button", name="Resolve", exact=True).click()
            expect(page.get_by_text(f"Alert #{aid} is now resolved.")).to_be_visible()

            # the plant answers the order: ordered work starts and ends with the alert's id
            assert wait_until(
                lambda: (
                    _count(
                        db_url,
                        "select count(*) from machine_events where machine_id = %s and seq > 0"
                        " and event = 'maintenance' and (detail->>'alert_id')::bigint = %s",
                        machine,
                        aid,
                    )
                    > 0
                ),
                REPAIR_TIMEOUT_S,
            ), f"the simulator never repaired {machine}; see {sim.log_path}"

            nav.get_by_text("Machine", exact=True).click()
            expect(page.get_by_role("heading", name="Machine detail", exact=True)).to_be_visible()
            _settle(page)
            picker = page.get_by_role("combobox", name="Machine", exact=True)
            picker.click()
            page.keyboard.type(machine)
            page.keyboard.press("Enter")
            _settle(page)
            expect(page.get_by_text(f"Alert #{aid}: repair ordered by op-loop")).to_be_visible(
                timeout=60_000
            )
            expect(page.get_by_text("repair arrived: repair done by the plant")).to_be_visible(
                timeout=60_000
            )
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "loop-machine-repaired.png"), full_page=True)
        finally:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "loop-last.png"), full_page=True)
            page.close()
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select detail->>'via', detail->>'action' from alert_transitions"
            " where alert_id = %s and to_status = 'resolved'",
            (aid,),
        ).fetchone()
    assert row == ("dashboard", "repair")


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False

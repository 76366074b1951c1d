"""The dashboard in a real headless Chromium: one test per page and per action, each with a screenshot.

One `forewarn dashboard` server on a free port over one seeded schema is shared by every test in this
module (Chromium is shared by the session); tests log in as people (accounts with argon2id
passwords), act through the UI and check the database. Every page is loaded with every request to
another origin blocked and recorded, so nothing the dashboard serves reaches the internet.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest

from forewarn.storage import alerts as alert_store
from forewarn.storage import notifications as ns
from forewarn.storage.people import create_user
from tests.fixtures.browser import ARTIFACTS, UI_TIMEOUT_MS, block_all_but, screenshot
from tests.fixtures.dashboard import SeededPlant, seeded_plant  # noqa: F401  (fixture)
from tests.fixtures.notify import SmtpServer
from tools.bench.dashboard_browser import dashboard_server

pytestmark = pytest.mark.browser

SETTLE_MS = 20_000
ADMIN = ("Ada Admin", "ada@plant.test", "admin-password-1")
OPERATOR = ("Otto Operator", "otto@plant.test", "operator-password-1")
PAGES = (  # nav label, header, key text that proves the data arrived, has charts
    ("Fleet", "Fleet health", "Open alerts", True),
    ("Machine", "Machine detail", "Alert history", True),
    ("Alerts", "Alerts", "Open and acknowledged", True),
    ("Downtime & ROI", "Downtime & ROI", "Net savings", True),
    ("Models", "Model monitoring", "Promotions and rollbacks", True),
    ("Admin", "Admin", "New account", False),
)


@dataclass
class Plant:
    url: str
    base: str
    smtp: SmtpServer
    users: dict[str, int]
    alerts: dict[str, int]  # action -> id of an open alert kept for that test
    blocked: list[str] = field(default_factory=list)


def _fresh_alerts(conn: psycopg.Connection) -> dict[str, int]:
    """One open alert per action test, on machines/modes the seed left without an open alert."""
    machines = [r[0] for r in conn.execute("select id from machines order by id")]
    now = datetime.now(UTC)
    out = {}
    for i, action in enumerate(("acknowledge", "resolve", "dismiss", "assign", "comment")):
        a = alert_store.NewAlert(machines[i], f"browser-{action}", "high", 0.91, 18.0, 9.0, 30.0,
                                 [], None, 30.0, "Inspect the bearing and the seal")  # fmt: skip
        with conn.transaction():
            out[action] = int(
                alert_store.insert_alert(conn, a, actor="alert-engine", now=now)["id"]
            )
    return out


@pytest.fixture(scope="module")
def plant(seeded_plant: SeededPlant, smtp_server: SmtpServer) -> Iterator[Plant]:  # noqa: F811
    with psycopg.connect(seeded_plant.url, autocommit=True) as conn:
        users = {}
        for (name, email, pw), role in ((ADMIN, "admin"), (OPERATOR, "operator")):
            users[role] = int(create_user(conn, name=name, email=email, role=role, password=pw,
                                          actor="test")["id"])  # fmt: skip
        alerts = _fresh_alerts(conn)
    ARTIFACTS.mkdir(exist_ok=True)
    with dashboard_server(seeded_plant.url, ARTIFACTS / "dashboard-server.log") as base:
        yield Plant(seeded_plant.url, base, smtp_server, users, alerts)


def _settle(page: Any) -> None:
    """Wait until Streamlit has finished running the script (no 'running' indicator).

    On a heavily loaded machine the live fragments (st.fragment(run_every=15-30 s)) can take as long
    as their period, so the indicator may never clear: after SETTLE_MS the test goes on and its own
    expectations (each waiting for its element) decide.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(
            "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=SETTLE_MS
        )


def _no_exception(page: Any, where: str) -> None:
    shown = page.locator('[data-testid="stException"]')
    assert shown.count() == 0, f"{where}: {shown.first.inner_text()}"


@pytest.fixture
def session(browser: Any, plant: Plant) -> Iterator[Any]:
    """A fresh browser context whose requests to anything but the dashboard are blocked."""
    context = browser.new_context(viewport={"width": 1440, "height": 2000})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    blocked = block_all_but(page, plant.base, plant.base.replace("http", "ws"))
    try:
        yield page
    finally:
        context.close()
    assert blocked == [], f"the dashboard reached for the internet: {blocked}"


def _login(page: Any, plant: Plant, who: tuple[str, str, str] = OPERATOR) -> Any:
    from playwright.sync_api import expect

    page.goto(plant.base)
    page.get_by_label("E-mail", exact=True).fill(who[1])
    page.get_by_label("Password", exact=True).fill(who[2])
    page.get_by_role("button", name="Log in", exact=True).click()
    nav = page.locator('[data-testid="stSidebarNav"]')
    expect(nav).to_be_visible()
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text(who[0])
    return nav


def _goto(page: Any, nav: Any, label: str, header: str) -> None:
    from playwright.sync_api import expect

    nav.get_by_text(label, exact=True).click()
    expect(page.get_by_role("heading", name=header, exact=True)).to_be_visible()
    _settle(page)


def _fill_kept(page: Any, fill: Any, kept: Any) -> None:
    """Fill a form until its fields keep their values.

    A tab change reruns the page; when that rerun lands after the fields were filled, Streamlit
    draws the form again empty. The form then refuses a nameless entry, so nothing wrong is stored,
    but the test must fill it again rather than submit blanks.
    """
    for _ in range(3):
        fill()
        _settle(page)
        if kept():
            return
    raise AssertionError("the form lost its values three times in a row")


def _pick(page: Any, label: str, option: str) -> None:
    """Choose an option of a Streamlit selectbox by its visible text."""
    box = page.get_by_role("combobox", name=label, exact=True)
    box.click()
    box.fill(option)
    page.get_by_role("option", name=re.compile(re.escape(option))).first.click()
    _settle(page)


def _alerts_page_on(page: Any, plant: Plant, action: str) -> tuple[Any, int]:
    nav = _login(page, plant)
    _goto(page, nav, "Alerts", "Alerts")
    alert_id = plant.alerts[action]
    _pick(page, "Alert", f"#{alert_id} ·")
    return nav, alert_id


def _transition(plant: Plant, alert_id: int) -> tuple[Any, ...]:
    with psycopg.connect(plant.url) as conn:
        row = conn.execute(
            "select a.status, t.actor, t.reason from alerts a join alert_transitions t"
            " on t.alert_id = a.id where a.id = %s order by t.id desc limit 1",
            (alert_id,),
        ).fetchone()
    assert row is not None
    return tuple(row)


def test_log_in_with_an_account_and_out(session: Any, plant: Plant) -> None:
    from playwright.sync_api import expect

    page = session
    page.goto(plant.base)
    page.get_by_label("E-mail", exact=True).fill(OPERATOR[1])
    page.get_by_label("Password", exact=True).fill("not-the-password")
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_text("Wrong e-mail or password.")).to_be_visible()
    screenshot(page, "dashboard-login-refused")
    _login(page, plant)
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("operator")
    screenshot(page, "dashboard-logged-in")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_label("E-mail", exact=True)).to_be_visible()
    with psycopg.connect(plant.url) as conn:
        seen = conn.execute("select last_login_at from users where id = %s",
                            (plant.users["operator"],)).fetchone()  # fmt: skip
    assert seen is not None and seen[0] is not None


@pytest.mark.parametrize(
    ("label", "header", "key_text", "charts"), PAGES, ids=[p[0] for p in PAGES]
)
def test_page_renders(
    session: Any, plant: Plant, label: str, header: str, key_text: str, charts: bool
) -> None:
    from playwright.sync_api import expect

    page = session
    nav = _login(page, plant, ADMIN)
    _goto(page, nav, label, header)
    expect(page.get_by_text(key_text).first).to_be_visible()
    _no_exception(page, label)
    if charts:
        expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible()
        expect(page.locator(".main-svg").first).to_be_attached()  # Plotly drew
    slug = label.lower().replace(" & ", "-").replace(" ", "-")
    screenshot(page, f"dashboard-{slug}")


def test_filter_the_fleet(session: Any, plant: Plant) -> None:
    from playwright.sync_api import expect

    page = session
    nav = _login(page, plant)
    _goto(page, nav, "Fleet", "Fleet health")
    with psycopg.connect(plant.url) as conn:
        site, n = conn.execute(
            "select site_id, count(*) from machines group by site_id order by site_id limit 1"
        ).fetchone()  # type: ignore[misc]
    box = page.get_by_role("combobox", name="Site")
    box.click()
    page.get_by_role("option", name=site, exact=True).click()
    page.keyboard.press("Escape")
    _settle(page)
    metric = page.locator('[data-testid="stMetric"]', has_text="Machines").first
    expect(metric).to_contain_text(str(n))
    screenshot(page, "dashboard-fleet-filtered")


def test_open_a_machine(session: Any, plant: Plant) -> None:
    from playwright.sync_api import expect

    page = session
    nav = _login(page, plant)
    _goto(page, nav, "Machine", "Machine detail")
    with psycopg.connect(plant.url) as conn:
        machine = conn.execute("select id from machines order by id desc limit 1").fetchone()[0]  # type: ignore[index]
    _pick(page, "Machine", machine)
    expect(
        page.get_by_role("heading", name=re.compile(rf"^{re.escape(machine)} ·"))
    ).to_be_visible()
    expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible()
    _no_exception(page, "machine")
    screenshot(page, "dashboard-machine-opened")


def test_acknowledge(session: Any, plant: Plant) -> None:
    from playwright.sync_api import expect

    page = session
    _, alert_id = _alerts_page_on(page, plant, "acknowledge")
    page.get_by_role("button", name="Acknowledge", exact=True).click()
    expect(page.get_by_text(f"Alert #{alert_id} is now acknowledged.")).to_be_visible()
    screenshot(page, "dashboard-alert-acknowledged")
    assert _transition(plant, alert_id)[:2] == ("acknowledged", OPERATOR[0])


def test_resolve(session: Any, plant: Plant) -> None:
    from playwright.sync_api import expect

    page = session
    _, alert_id = _alerts_page_on(page, plant, "resolve")
    page.get_by_role("tab", name="Resolve").click()
    _settle(page)
    _pick(page, "Maintenance done", "repair")
    page.get_by_label("Note", exact=True).fill("replaced the bearing")
    page.get_by_role("button", name="Resolve", exact=True).click()
    expect(page.get_by_text(f"Alert #{alert_id} is now resolved.")).to_be_visible()
    screenshot(page, "dashboard-alert-resolved")
    assert _transition(plant, alert_id) == ("resolved", OPERATOR[0], "replaced the bearing")


def test_dismiss(session: Any, plant: Plant) -> None:
    from playwright.sync_api import expect

    page = session
    _, alert_id = _alerts_page_on(page, plant, "dismiss")
    page.get_by_role("tab", name="Dismiss").click()
    _settle(page)
    page.get_by_label("Why is this a false alarm?").fill("sensor was being recalibrated")
    page.get_by_label("Why is this a false alarm?").press("Enter")
    _settle(page)
    page.get_by_role("button", name="Dismiss", exact=True).click()
    expect(page.get_by_text(f"Alert #{alert_id} is now dismissed.")).to_be_visible()
    screenshot(page, "dashboard-alert-dismissed")
    assert _transition(plant, alert_id) == (
        "dismissed",
        OPERATOR[0],
        "sensor was being recalibrated",
    )


def test_assign(session: Any, plant: Plant) -> None:
    from playwright.sync_api import expect

    page = session
    _, alert_id = _alerts_page_on(page, plant, "assign")
    page.get_by_role("tab", name="Assign").click()
    _settle(page)
    _pick(page, "Assign to", ADMIN[0])
    page.get_by_role("button", name="Assign", exact=True).click()
    expect(page.get_by_text(f"Alert #{alert_id} assigned to {ADMIN[0]}.")).to_be_visible()
    expect(page.get_by_text(f"Assigned to: {ADMIN[0]}")).to_be_visible()
    screenshot(page, "dashboard-alert-assigned")
    assert _transition(plant, alert_id)[1:] == (OPERATOR[0], f"assigned to {ADMIN[0]}")
    with psycopg.connect(plant.url) as conn:
        assignee = conn.execute(
            "select assignee_id from alerts where id = %s", (alert_id,)
        ).fetchone()
    assert assignee == (plant.users["admin"],)


def test_comment(session: Any, plant: Plant) -> None:
    from playwright.sync_api import expect

    page = session
    _, alert_id = _alerts_page_on(page, plant, "comment")
    page.get_by_role("tab", name="Comment").click()
    _settle(page)
    page.get_by_role("textbox", name="Comment", exact=True).fill(
        "Vibration confirmed on site; part ordered."
    )
    page.get_by_role("button", name="Add comment").click()
    expect(page.get_by_text(f"Comment added to alert #{alert_id}.")).to_be_visible()
    expect(page.get_by_text("Vibration confirmed on site; part ordered.")).to_be_visible()
    expect(page.get_by_role("heading", name="Closed in the last 7 days")).to_be_visible()
    screenshot(page, "dashboard-alert-commented")
    assert _transition(plant, alert_id)[1:] == (OPERATOR[0], "commented")


def test_notification_rule_created_and_email_received(session: Any, plant: Plant) -> None:
    from playwright.sync_api import expect

    from forewarn.egress import EgressPolicy
    from forewarn.notify.delivery import notify_tick
    from forewarn.settings import NotifySettings

    page = session
    nav = _login(page, plant, ADMIN)
    _goto(page, nav, "Admin", "Admin")
    page.get_by_role("tab", name="Channels").click()
    _settle(page)
    page.get_by_label("Channel name").fill("planner mail")
    page.get_by_label("E-mail address or webhook URL").fill("planner@plant.test")
    page.get_by_role("button", name="Add channel").click()
    expect(page.get_by_text("Channel planner mail added.")).to_be_visible()
    page.get_by_role("tab", name="Rules").click()
    _settle(page)
    name_box = page.get_by_label("Rule name")
    severity_box = page.get_by_role("combobox", name="Minimum severity", exact=True)

    def fill_rule() -> None:
        name_box.fill("critical anywhere")
        _pick(page, "Minimum severity", "critical")

    _fill_kept(
        page,
        fill_rule,
        lambda: (
            (name_box.input_value(), severity_box.input_value())
            == ("critical anywhere", "critical")
        ),
    )
    page.get_by_role("button", name="Add rule").click()
    expect(page.get_by_text("Rule critical anywhere added.")).to_be_visible()
    screenshot(page, "dashboard-admin-rule-created")
    with psycopg.connect(plant.url, autocommit=True) as conn:
        (rule,) = [r for r in ns.list_rules(conn) if r["name"] == "critical anywhere"]
        assert rule["min_severity"] == "critical"
        machine = conn.execute("select id from machines order by id limit 1").fetchone()[0]  # type: ignore[index]
        a = alert_store.NewAlert(machine, "browser-notify", "critical", 0.97, 4.0, 2.0, 7.0, [], None,
                                 10.0, "Stop the machine and replace the bearing")  # fmt: skip
        with conn.transaction():
            alert = alert_store.insert_alert(conn, a, actor="alert-engine", now=datetime.now(UTC))
        before = len(plant.smtp.messages)
        cfg = NotifySettings(**plant.smtp.settings(dashboard_url=plant.base))
        with httpx.Client() as client:  # what the alert loop runs on each pass
            out = notify_tick(conn, cfg, client, now=datetime.now(UTC), policy=EgressPolicy())
    assert out["delivered"] >= 1 and out["failed"] == 0
    msg = [m for m in plant.smtp.wait_for(before + 1) if m["To"] == "planner@plant.test"][-1]
    assert f"alert #{alert['id']}" in msg["Subject"] and "critical" in msg["Subject"]
    page.get_by_role("tab", name="Delivery log").click()  # a tab change reruns: fresh log
    _settle(page)
    panel = page.get_by_role("tabpanel", name="Delivery log")
    expect(panel.locator('[data-testid="stDataFrame"]')).to_be_visible()
    screenshot(page, "dashboard-admin-delivery-log")


def test_what_if_recompute(session: Any, plant: Plant) -> None:
    from playwright.sync_api import expect

    page = session
    nav = _login(page, plant)
    _goto(page, nav, "Downtime & ROI", "Downtime & ROI")
    expect(page.get_by_text("What if the costs were different?")).to_be_visible()
    field_ = page.locator('[data-testid="stNumberInput"] input').first
    field_.fill("123456")
    page.get_by_role("button", name="Recompute").click()
    expect(page.get_by_text(re.compile(r"Recomputed for .* with 1 changed cost"))).to_be_visible()
    _no_exception(page, "what-if")
    screenshot(page, "dashboard-roi-what-if")


def test_models_side_by_side(session: Any, plant: Plant) -> None:
    """Champion, challenger and online model of each machine type in one row of three boxes; a
    type without a challenger says so; drift is drawn on the plant clock."""
    from playwright.sync_api import expect

    page = session
    nav = _login(page, plant)
    _goto(page, nav, "Models", "Model monitoring")
    expect(
        page.get_by_role("heading", name="Champion, challenger and online model")
    ).to_be_visible()
    cnc = ["Champion · pm-cnc v1", "Challenger · pm-cnc v2", "Online · online-cnc"]
    for text in cnc:
        expect(page.get_by_text(text, exact=True).first).to_be_visible()
    # the three boxes (Streamlit columns) sit on one row, left to right; waited for, as the page
    # may still be laying out when the texts appear
    page.wait_for_function(
        """(texts) => {
            const box = (t) => [...document.querySelectorAll('[data-testid="stColumn"]')]
                .find((c) => [...c.querySelectorAll("p")].some((p) => p.innerText.trim() === t));
            const r = texts.map(box).map((c) => c && c.getBoundingClientRect());
            return r.every(Boolean) && Math.abs(r[0].top - r[2].top) < 2
                && Math.abs(r[0].top - r[1].top) < 2 && r[0].right <= r[1].left
                && r[1].right <= r[2].left;
        }""",
        arg=cnc,
    )
    expect(
        page.get_by_text(re.compile(r"^No challenger yet — `?forewarn retrain.*due since"))
    ).to_be_visible()
    expect(page.get_by_text("Learned up to (plant time)").first).to_be_visible()
    drift = page.locator('[data-testid="stPlotlyChart"]', has_text="Drift detections (plant time)")
    expect(drift).to_be_visible()
    expect(drift.locator(".xtitle")).to_have_text("plant time (UTC)")
    _no_exception(page, "models")
    main = page.locator('[data-testid="stMain"]').inner_text()
    for raw in ("None", "nan", "NaT"):
        assert not re.search(rf"\b{raw}\b", main), f"{raw!r} shown on the Models page"
    screenshot(page, "dashboard-models-side-by-side")

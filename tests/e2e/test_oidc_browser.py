"""OpenID Connect login (Streamlit's st.login) against a real provider, in headless Chromium.

The provider is oidc-provider-mock (discovery, authorize, token, userinfo and a login form where
the tester types the subject; the e-mail claim is that subject), on a free port in a thread. The
dashboard runs with its own working directory and HOME holding `.streamlit/secrets.toml` with the
`[auth]` section a plant writes. A person with a Forewarn account logs in through the provider,
lands on the dashboard under their name, acknowledges an alert and the audit trail names them; an
identity with no Forewarn account is refused with a message.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from forewarn.broker import free_port
from forewarn.storage import alerts as alert_store
from forewarn.storage.people import create_user
from tests.fixtures.browser import ARTIFACTS, UI_TIMEOUT_MS, screenshot
from tests.fixtures.dashboard import SeededPlant, seeded_plant  # noqa: F401  (fixture)
from tools.bench.dashboard_browser import dashboard_server

pytestmark = pytest.mark.browser

PERSON = ("Olga Oidc", "olga@plant.test")
STRANGER = "nobody@elsewhere.test"


@dataclass
class OidcPlant:
    url: str
    base: str
    provider: str
    user_id: int
    alert_id: int


def _secrets(home: Path, port: int, provider: str) -> None:
    """The `[auth]` section a plant puts in `.streamlit/secrets.toml`."""
    folder = home / ".streamlit"
    folder.mkdir()
    (folder / "secrets.toml").write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "forewarn-dashboard"\n'
        f'client_secret = "{secrets.token_hex(16)}"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n'
    )


@pytest.fixture(scope="module")
def oidc_plant(
    seeded_plant: SeededPlant,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OidcPlant]:
    from oidc_provider_mock import run_server_in_thread

    with psycopg.connect(seeded_plant.url, autocommit=True) as conn:
        # the provider never sees this password: the account gives the person a name and a role
        user_id = int(create_user(conn, name=PERSON[0], email=PERSON[1], role="operator",
                                  password=secrets.token_hex(8), actor="test")["id"])  # fmt: skip
        machine = conn.execute("select id from machines order by id limit 1").fetchone()
        assert machine is not None
        a = alert_store.NewAlert(machine[0], "browser-oidc", "high", 0.9, 18.0, 9.0, 30.0,
                                 [], None, 30.0, "Inspect the bearing and the seal")  # fmt: skip
        with conn.transaction():
            alert_id = int(alert_store.insert_alert(conn, a, actor="alert-engine",
                                                    now=datetime.now(UTC))["id"])  # fmt: skip
    home = tmp_path_factory.mktemp("oidc-home")
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    with run_server_in_thread() as server:
        provider = f"http://localhost:{server.server_port}"
        _secrets(home, port, provider)
        log = ARTIFACTS / "dashboard-oidc-server.log"
        with dashboard_server(seeded_plant.url, log, port=port, home=home) as base:
            yield OidcPlant(seeded_plant.url, base, provider, user_id, alert_id)


@pytest.fixture
def page(browser: Any, oidc_plant: OidcPlant) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 1600})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    try:
        yield page
    finally:
        context.close()


def _through_provider(page: Any, plant: OidcPlant, email: str, shot: str) -> None:
    """Click the dashboard's identity-provider button and sign in on the provider's form."""
    from playwright.sync_api import expect

    page.goto(plant.base)
    page.get_by_role("button", name="Log in with your identity provider").click()
    page.wait_for_url(f"{plant.provider}/oauth2/authorize*")
    expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
    page.get_by_placeholder("sub").fill(email)
    screenshot(page, shot)
    page.get_by_role("button", name="Authorize", exact=True).click()
    page.wait_for_url(f"{plant.base}/**")


def test_oidc_login_names_the_person_in_the_audit_trail(page: Any, oidc_plant: OidcPlant) -> None:
    from playwright.sync_api import expect

    _through_provider(page, oidc_plant, PERSON[1], "dashboard-oidc-provider-form")
    sidebar = page.locator('[data-testid="stSidebar"]')
    expect(sidebar).to_contain_text(PERSON[0])
    expect(sidebar).to_contain_text("operator")
    screenshot(page, "dashboard-oidc-logged-in")
    with psycopg.connect(oidc_plant.url) as conn:
        seen = conn.execute(
            "select last_login_at from users where id = %s", (oidc_plant.user_id,)
        ).fetchone()
    assert seen is not None and seen[0] is not None

    page.locator('[data-testid="stSidebarNav"]').get_by_text("Alerts", exact=True).click()
    expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    box = page.get_by_role("combobox", name="Alert", exact=True)
    box.click()
    box.fill(f"#{oidc_plant.alert_id} ·")
    page.get_by_role("option", name=f"#{oidc_plant.alert_id} ·").first.click()
    page.get_by_role("button", name="Acknowledge", exact=True).click()
    expect(page.get_by_text(f"Alert #{oidc_plant.alert_id} is now acknowledged.")).to_be_visible()
    screenshot(page, "dashboard-oidc-acknowledged")
    with psycopg.connect(oidc_plant.url) as conn:
        row = conn.execute(
            "select a.status, t.actor from alerts a join alert_transitions t on t.alert_id = a.id"
            " where a.id = %s order by t.id desc limit 1",
            (oidc_plant.alert_id,),
        ).fetchone()
    assert row == ("acknowledged", PERSON[0])


def test_oidc_identity_without_an_account_is_refused(page: Any, oidc_plant: OidcPlant) -> None:
    from playwright.sync_api import expect

    _through_provider(page, oidc_plant, STRANGER, "dashboard-oidc-provider-form-stranger")
    expect(page.get_by_text(f"{STRANGER} has no Forewarn account")).to_be_visible()
    expect(page.locator('[data-testid="stSidebarNav"]')).to_have_count(0)
    expect(page.get_by_label("E-mail", exact=True)).to_be_visible()  # still the login page
    screenshot(page, "dashboard-oidc-refused")

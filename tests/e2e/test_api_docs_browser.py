"""/docs and /redoc render in headless Chromium with every request to anything but the API blocked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg_pool import ConnectionPool

from forewarn.settings import load_settings
from tests.fixtures.browser import ThreadedServer, block_all_but, screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def api_url(db_url: str) -> Iterator[str]:
    from api.app import create_app

    with ConnectionPool(db_url, min_size=1, max_size=2, open=True) as pool:
        app = create_app(load_settings(), pool=pool)
        with ThreadedServer(app) as server:
            yield server.url


def test_swagger_ui_and_redoc_render_offline(browser: object, api_url: str) -> None:
    from playwright.sync_api import expect

    context = browser.new_context()  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        blocked = block_all_but(page, api_url)
        failed: list[str] = []
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.goto(f"{api_url}/docs")
        # Swagger UI drew the operations from /openapi.json: its JS and CSS came from the API
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("Forewarn")
        expect(page.locator(".opblock-summary-path", has_text="/v1/alerts/changes")).to_be_visible()
        page.locator(".opblock-summary-path", has_text="/v1/alerts/changes").click()
        expect(page.get_by_text("cursor").first).to_be_visible()
        screenshot(page, "api-docs-swagger")
        page.goto(f"{api_url}/redoc")
        expect(page.locator(".api-info h1, [class*='ApiHeader']").first).to_contain_text("Forewarn")
        expect(page.get_by_text("/v1/alerts/changes").first).to_be_attached()
        screenshot(page, "api-docs-redoc")
        page.wait_for_load_state("networkidle")
        assert blocked == [], f"the docs tried to reach the internet: {blocked}"
        assert [u for u in failed if u.startswith(api_url)] == []
    finally:
        context.close()

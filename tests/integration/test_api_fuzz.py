"""Bad input is a 4xx, never a 5xx: hand-picked cases and a schemathesis run against the OpenAPI spec."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from forewarn.storage import alerts as store
from tests.factories import T0
from tests.fixtures.app import ApiEnv

BAD_REQUESTS = [
    ("GET", "/v1/alerts/changes?cursor=-1", None),
    ("GET", "/v1/alerts/changes?cursor=abc", None),
    ("GET", "/v1/alerts/changes?limit=0", None),
    ("GET", "/v1/alerts/changes?limit=100000", None),
    ("GET", "/v1/alerts?status=exploded", None),
    ("GET", "/v1/alerts/0", None),
    ("GET", "/v1/alerts/99999999999999999999999", None),
    ("GET", "/v1/alerts?since=not-a-date", None),
    ("GET", "/v1/alerts?since=0001-01-01T00:00:00", None),
    (
        "GET",
        "/v1/machines/s1-pump-000/readings?start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z",
        None,
    ),
    ("GET", "/v1/machines/s1-pump-000/readings?bucket_s=1&start=2020-01-01T00:00:00Z", None),
    ("GET", "/v1/machines/nope/readings", None),
    ("GET", "/v1/machines/nope", None),
    ("GET", "/v1/predictions?role=oracle", None),
    ("GET", "/v1/roi?days=-3", None),
    ("POST", "/v1/alerts/1/acknowledge", "not json"),
    ("POST", "/v1/alerts/1/resolve", {"action": "pray"}),
    ("POST", "/v1/alerts/1/dismiss", {"reason": ""}),
    ("POST", "/v1/alerts/1/acknowledge", {"expected_version": 0}),
    ("POST", "/v1/alerts/1/acknowledge", {"unknown": 1}),
    ("POST", "/v1/models/m/promote", {"version": 1}),
    ("POST", "/v1/models/m/rollback", {}),
    ("POST", "/v1/webhooks", {"url": "ftp://x"}),
    ("POST", "/v1/webhooks", {"url": "http://x", "events": ["alert.exploded"]}),
    ("POST", "/v1/keys", {"name": "a b", "role": "viewer"}),
    ("POST", "/v1/keys", {"name": "x", "role": "root"}),
    ("DELETE", "/v1/webhooks/5", None),
    ("DELETE", "/v1/keys/ghost", None),
]


def test_bad_requests_are_4xx_with_a_message(api_env: ApiEnv) -> None:
    for method, url, body in BAD_REQUESTS:
        kw = {"content": body} if isinstance(body, str) else {"json": body}
        r = api_env.client.request(method, url, headers=api_env.h("admin"), **kw)
        assert 400 <= r.status_code < 500, (method, url, r.status_code, r.text)
        assert r.json()["detail"], (method, url)


def test_openapi_fuzz_finds_no_5xx_and_no_schema_violation(api_env: ApiEnv) -> None:
    """Valid and invalid requests for every operation, generated from the OpenAPI document."""
    with api_env.conn() as conn:  # a few alerts, so that transitions meet real rows too
        for i in range(5):
            a = store.NewAlert(
                "s1-pump-000", f"mode-{i}", "high", 0.9, 5.0, 1.0, 9.0, {"f": 1.0}, None, 3.0, "x"
            )
            store.insert_alert(conn, a, actor="system", now=T0)
    schema = schemathesis.openapi.from_asgi("/openapi.json", api_env.client.app)
    cases = st.one_of(
        schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE)
    )
    checks = [not_a_server_error, response_schema_conformance, status_code_conformance]

    @given(case=cases)
    @settings(
        max_examples=250,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    def run(case: Case) -> None:
        case.call_and_validate(headers=api_env.h("admin"), checks=checks)

    run()

"""No 500 from any request (issue 18): NaN/Infinity, malformed JSON, oversized bodies, bounded
echoes, and the per-address limit on key lookups before authentication."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode

from api.auth import ROUTE_ROLES
from tests.fixtures.app import ApiEnv, build_env

MIB = 1024 * 1024
BODY_ROUTES = sorted((m, p) for m, p in ROUTE_ROLES if m == "POST")
NON_FINITE = (b"NaN", b"Infinity", b"-Infinity")


def _url(path: str) -> str:
    return path.format(alert_id=1, name="m", webhook_id=1)


def test_what_if_with_a_nan_literal_is_422_for_a_viewer(api_env: ApiEnv) -> None:
    body = b'{"costs": {"pump": {"repair_cost": NaN}}}'
    r = api_env.client.post("/v1/roi/what-if", content=body, headers=api_env.h("viewer"))
    assert r.status_code == 422, r.text
    assert "NaN" in r.json()["detail"]


def test_non_finite_literals_are_422_on_every_json_route(api_env: ApiEnv) -> None:
    for method, path in BODY_ROUTES:
        for literal in NON_FINITE:
            body = b'{"costs": {"*": {"repair_cost": ' + literal + b'}}, "version": ' + literal
            r = api_env.client.request(
                method, _url(path), content=body + b"}", headers=api_env.h("admin")
            )
            assert r.status_code == 422, (path, r.status_code, r.text)
            assert r.json()["detail"]


MALFORMED = [
    b"{",
    b'{"a": 1,}',
    b"\xff\xfe{\x00}\x00",
    b"\xef\xbb\xbf{}",
    b'{"a": 1e999999}',  # json parses this to inf: must not reach a route as a number
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a": "\\ud800"}',
    b"nul\x00l",
]


def test_malformed_json_is_422_with_a_message(api_env: ApiEnv) -> None:
    for body in MALFORMED:
        r = api_env.client.post("/v1/roi/what-if", content=body, headers=api_env.h("viewer"))
        assert r.status_code == 422, (body[:20], r.status_code, r.text)
        assert r.json()["detail"]


def test_a_2_mib_body_is_413_declared_or_streamed(api_env: ApiEnv) -> None:
    big = json.dumps({"costs": {"pump": {f"k{i}": 1.0 for i in range(150_000)}}}).encode()
    assert len(big) > 2 * MIB
    r = api_env.client.post("/v1/roi/what-if", content=big, headers=api_env.h("viewer"))
    assert r.status_code == 413 and "bytes" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is found while reading
        for i in range(0, len(big), 64 * 1024):
            yield big[i : i + 64 * 1024]

    r = api_env.client.post("/v1/roi/what-if", content=chunks(), headers=api_env.h("viewer"))
    assert r.status_code == 413


def test_the_body_limit_is_a_setting(db_url: str) -> None:
    env_iter = build_env(db_url, api={"max_body_bytes": 2048})
    env = next(env_iter)
    try:
        body = json.dumps({"costs": {"pump": {"repair_cost": 1.0}}, "pad": "x" * 3000}).encode()
        r = env.client.post("/v1/roi/what-if", content=body, headers=env.h("viewer"))
        assert r.status_code == 413
    finally:
        env_iter.close()


def test_responses_echo_only_an_excerpt_of_the_input(api_env: ApiEnv) -> None:
    """A body just under the limit, invalid everywhere: the answer stays small."""
    costs = {f"type-{i}": {"repair_cost": "x" * 200} for i in range(4000)}
    body = json.dumps({"costs": costs}).encode()
    assert 800_000 < len(body) < MIB
    r = api_env.client.post("/v1/roi/what-if", content=body, headers=api_env.h("viewer"))
    assert r.status_code == 422
    assert len(r.content) < 20_000, len(r.content)
    long_query = "x" * 50_000
    r = api_env.client.get(f"/v1/alerts?status={long_query}", headers=api_env.h("viewer"))
    assert r.status_code == 422 and len(r.content) < 5_000


def test_non_finite_query_numbers_are_422(api_env: ApiEnv) -> None:
    for value in ("nan", "inf", "-inf", "Infinity"):
        r = api_env.client.get(f"/v1/roi?days={value}", headers=api_env.h("viewer"))
        assert r.status_code == 422, r.text


@pytest.fixture
def limited_env(db_url: str) -> Iterator[ApiEnv]:
    yield from build_env(db_url, api={"auth_rate_limit_per_min": 5})


def test_key_lookups_are_rate_limited_per_address_before_authentication(
    limited_env: ApiEnv,
) -> None:
    env = limited_env
    codes = [
        env.client.get("/v1/machines", headers={"X-API-Key": f"guess-{i}"}).status_code
        for i in range(8)
    ]
    assert codes[:5] == [401] * 5
    assert codes[5:] == [429] * 3
    r = env.client.get("/v1/machines", headers={"X-API-Key": "guess-9"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    # a forwarded-for header is not trusted: it is still the same address
    r = env.client.get(
        "/v1/machines", headers={"X-API-Key": "guess-10", "X-Forwarded-For": "ignored"}
    )
    assert r.status_code == 429


def _poison(value: Any, rnd: st.DataObject) -> Any:
    """``value`` with one number (or the whole value) replaced by NaN or an infinity."""
    bad = rnd.draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    if isinstance(value, dict) and value:
        key = rnd.draw(st.sampled_from(sorted(value)))
        return {**value, key: _poison(value[key], rnd)}
    if isinstance(value, list) and value:
        i = rnd.draw(st.integers(0, len(value) - 1))
        return [*value[:i], _poison(value[i], rnd), *value[i + 1 :]]
    return bad


def test_schemathesis_with_non_finite_and_oversized_bodies_finds_no_5xx(api_env: ApiEnv) -> None:
    """Cases for every JSON-body operation from the OpenAPI document, then a NaN/Infinity put in
    (JSON cannot carry them, so no generator makes them) or the body padded past the limit."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", api_env.client.app)
    cases = st.one_of(
        schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE)
    )
    limit = api_env.settings.api.max_body_bytes

    @given(case=cases, rnd=st.data(), oversize=st.booleans())
    @settings(
        max_examples=100,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    def run(case: Case, rnd: st.DataObject, oversize: bool) -> None:
        if case.method.upper() != "POST":
            return
        body = case.body if isinstance(case.body, dict | list) else {}
        raw = json.dumps(_poison(body, rnd)).encode()  # allow_nan: NaN / Infinity literals
        if oversize:
            raw = raw + b" " * (limit + 1 - len(raw))
        r = api_env.client.request(
            case.method,
            case.formatted_path,
            params=case.query,
            content=raw,
            headers={**api_env.h("admin"), "Content-Type": "application/json"},
        )
        assert r.status_code == (413 if oversize else 422), (case.formatted_path, r.text[:200])
        assert r.json()["detail"]

    run()

"""Keys and roles: every route has a rule, 401/403 enforced, keys hashed, rate limit, 503 when down."""

from __future__ import annotations

import hashlib
import re

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from api.app import create_app
from api.auth import DOC_PATHS, PUBLIC, ROUTE_ROLES, api_routes, check_rules
from forewarn.settings import load_settings
from forewarn.storage.keys import ROLES
from tests.fixtures.app import ApiEnv, build_env

EXAMPLE_PARAMS = {
    "alert_id": "1",
    "machine_id": "s1-pump-000",
    "name": "m",
    "webhook_id": "1",
    "user_id": "1",
    "channel_id": "1",
    "rule_id": "1",
    "mute_id": "1",
    "type_id": "pump",
}


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: EXAMPLE_PARAMS[m.group(1)], path)


def test_every_route_has_an_access_rule(api_env: ApiEnv) -> None:
    app = api_env.client.app
    found = {(m, r.path) for r in api_routes(app.routes) for m in r.methods or ()}
    assert found == set(ROUTE_ROLES)
    others = {
        getattr(r, "path", None) for r in app.routes if not hasattr(r, "effective_route_contexts")
    }
    assert others <= DOC_PATHS  # only the OpenAPI document and its viewers sit outside the matrix
    # a route added without a rule is refused
    app.get("/v1/unruled")(lambda: {"x": 1})
    with pytest.raises(RuntimeError, match="GET /v1/unruled has no entry"):
        check_rules(app.routes)


def test_role_matrix_is_enforced_on_every_route(api_env: ApiEnv) -> None:
    c = api_env.client
    for (method, path), roles in sorted(ROUTE_ROLES.items()):
        url = _url(path)
        if roles is PUBLIC:
            assert c.request(method, url).status_code == 200, url
            continue
        assert c.request(method, url).status_code == 401, url
        assert c.request(method, url, headers={"X-API-Key": "fwk_not-a-key"}).status_code == 401
        for role in ROLES:
            code = c.request(method, url, headers=api_env.h(role), json={}).status_code
            if role in roles:
                assert code not in (401, 403), (method, url, role, code)
            else:
                assert code == 403, (method, url, role, code)
    # bearer works as well as X-API-Key
    bearer = {"Authorization": f"Bearer {api_env.keys['viewer']}"}
    assert c.get("/v1/machines", headers=bearer).status_code == 200


def test_keys_are_stored_hashed_and_revocation_is_immediate(api_env: ApiEnv) -> None:
    c = api_env.client
    r = c.post("/v1/keys", json={"name": "cmms", "role": "maintenance"}, headers=api_env.h("admin"))
    assert r.status_code == 201
    key = r.json()["key"]
    assert len(key) > 40
    with api_env.conn() as conn:
        rows = conn.execute(
            "select name, key_hash, prefix from api_keys where name = 'cmms'"
        ).fetchall()
        dump = str(conn.execute("select * from api_keys").fetchall())
    assert rows == [("cmms", hashlib.sha256(key.encode()).hexdigest(), key[:12])]
    assert key not in dump
    assert c.get("/v1/alerts/changes", headers={"X-API-Key": key}).status_code == 200
    assert (
        c.post(
            "/v1/keys", json={"name": "cmms", "role": "viewer"}, headers=api_env.h("admin")
        ).status_code
        == 409
    )
    assert c.delete("/v1/keys/cmms", headers=api_env.h("admin")).status_code == 204
    assert c.get("/v1/alerts/changes", headers={"X-API-Key": key}).status_code == 401


def test_rate_limit_per_key(db_url: str) -> None:
    for env in build_env(db_url, api={"rate_limit_per_min": 5}):
        codes = [
            env.client.get("/v1/machines", headers=env.h("viewer")).status_code for _ in range(7)
        ]
        assert codes == [200] * 5 + [429] * 2
        last = env.client.get("/v1/machines", headers=env.h("viewer"))
        assert int(last.headers["Retry-After"]) >= 1
        # another key has its own bucket
        assert env.client.get("/v1/machines", headers=env.h("operator")).status_code == 200


def test_database_down_is_503_with_retry_after() -> None:
    pool = ConnectionPool(
        "postgresql://127.0.0.1:1/none", min_size=0, max_size=1, timeout=0.5, open=False
    )
    pool.open(wait=False)
    try:
        client = TestClient(create_app(load_settings(), pool=pool))
        assert client.get("/v1/health").status_code == 200
        for r in (
            client.get("/v1/ready"),
            client.get("/v1/machines", headers={"X-API-Key": "fwk_x"}),
        ):
            assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    finally:
        pool.close()

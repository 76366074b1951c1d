"""A read-only database makes writes answer 503 with Retry-After, never 500."""

from __future__ import annotations

from urllib.parse import quote

from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from api.app import create_app
from tests.fixtures.app import ApiEnv


def test_writes_on_a_read_only_database_are_503(api_env: ApiEnv) -> None:
    read_only_url = api_env.url + quote(" -cdefault_transaction_read_only=on")
    with ConnectionPool(read_only_url, min_size=1, max_size=2, timeout=5, open=True) as pool:
        app = create_app(api_env.settings, pool=pool)
        with TestClient(app, raise_server_exceptions=False) as client:
            read = client.get("/v1/machines", headers=api_env.h("viewer"))
            assert read.status_code == 200  # reads still work
            write = client.post(
                "/v1/keys", json={"name": "new-key", "role": "viewer"}, headers=api_env.h("admin")
            )
            assert write.status_code == 503, write.text
            assert write.headers["Retry-After"]
    with api_env.conn() as conn:
        assert conn.execute("select count(*) from api_keys where name = 'new-key'").fetchone() == (
            0,
        )

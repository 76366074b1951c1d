"""Webhooks: signed deliveries to a real receiver on 127.0.0.1, retried with backoff, every attempt logged."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from forewarn.egress import EgressPolicy
from forewarn.storage import alerts as store
from forewarn.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    deliver_pending,
    sign,
    verify_signature,
)
from tests.factories import T0
from tests.fixtures.app import ApiEnv, build_env

# the receiver listens on loopback over http: both need the explicit allow-list
LOOPBACK = {"allow_http": True, "allow_hosts": ["127.0.0.1"]}
POLICY = EgressPolicy(allow_http=True, allow=("127.0.0.1",))


@pytest.fixture
def api_env(db_url: str) -> Iterator[ApiEnv]:
    yield from build_env(db_url, webhooks=LOOPBACK)


class Receiver:
    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.requests: list[tuple[dict[str, str], bytes]] = []


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    rec = Receiver(fail_first=2)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            rec.requests.append((dict(self.headers), body))
            self.send_response(500 if len(rec.requests) <= rec.fail_first else 204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec, f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def _raise_alert(env: ApiEnv) -> int:
    with env.conn() as conn, conn.transaction():
        a = store.NewAlert(
            "s1-pump-000", "bearing", "high", 0.9, 20.0, 10.0, 30.0, {}, None, 5.0, "inspect"
        )
        return int(store.insert_alert(conn, a, actor="system", now=T0)["id"])


def test_signed_delivery_retried_until_accepted(
    api_env: ApiEnv, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    env = api_env
    r = env.client.post(
        "/v1/webhooks", json={"url": url, "events": ["alert.raised"]}, headers=env.h("admin")
    )
    assert r.status_code == 201
    hook = r.json()
    secret = hook["secret"]
    assert env.client.get("/v1/webhooks", headers=env.h("operator")).status_code == 403
    aid = _raise_alert(env)
    with env.conn() as conn, httpx.Client(timeout=5) as client:
        # acknowledging enqueues alert.acknowledged, which this subscription does not want
        store.transition(conn, aid, "acknowledged", actor="x", reason="", now=T0)
        assert deliver_pending(conn, client, attempts=4, backoff_s=0.01, policy=POLICY) == (1, 0)
    assert len(rec.requests) == 3  # two 500s, then accepted
    headers, body = rec.requests[-1]
    assert json.loads(body)["event"] == "alert.raised" and json.loads(body)["alert"]["id"] == aid
    now = time.time()
    assert verify_signature(
        secret, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER], now=now
    )
    # tampered body, wrong secret, replayed after the tolerance: all rejected
    assert not verify_signature(
        secret, headers[TIMESTAMP_HEADER], body + b" ", headers[SIGNATURE_HEADER], now=now
    )
    assert not verify_signature(
        "other-secret-000", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER], now=now
    )
    assert not verify_signature(
        secret, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER], now=now + 3600
    )
    ids = {h["X-Forewarn-Delivery"] for h, _ in rec.requests}
    assert len(ids) == 1  # the same delivery id on every retry: receivers can de-duplicate
    log = env.client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=env.h("admin")).json()
    assert len(log) == 1 and log[0]["status"] == "delivered" and log[0]["attempts"] == 3
    assert [a["status_code"] for a in log[0]["log"]] == [500, 500, 204]


def test_delivery_gives_up_after_bounded_attempts(
    api_env: ApiEnv, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    rec.fail_first = 100
    env = api_env
    hook = env.client.post("/v1/webhooks", json={"url": url}, headers=env.h("admin")).json()
    _raise_alert(env)
    with env.conn() as conn, httpx.Client(timeout=5) as client:
        assert deliver_pending(conn, client, attempts=3, backoff_s=0.01, policy=POLICY) == (0, 1)
        assert deliver_pending(conn, client, attempts=3, backoff_s=0.01, policy=POLICY) == (
            0,
            0,
        )  # not resent
        n = conn.execute("select count(*) from webhook_attempts").fetchone()
    assert n == (3,) and len(rec.requests) == 3
    log = env.client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=env.h("admin")).json()
    assert log[0]["status"] == "failed"
    assert (
        env.client.delete(f"/v1/webhooks/{hook['id']}", headers=env.h("admin")).status_code == 204
    )


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    body = b'{"a":1}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("s3cret", 1700000000, body) == "sha256=" + expected

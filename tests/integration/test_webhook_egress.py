"""Webhooks cannot be turned inwards (issue 18): registration and delivery-time checks against a
real receiver on loopback, redirects not followed, timeouts and unread bodies, redacted listings."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from forewarn.egress import EgressPolicy
from forewarn.storage import alerts as store
from forewarn.storage import webhooks as hooks
from forewarn.webhooks import deliver_pending
from tests.factories import T0
from tests.fixtures.app import ApiEnv

ALLOWED = EgressPolicy(allow_http=True, allow=("127.0.0.1",), timeout_s=0.5)


class Receiver:
    """A loopback HTTP server whose answer each test chooses."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.mode = "ok"
        self.release = threading.Event()  # a hanging answer waits for this (or the test's end)
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers["Content-Length"]))
                rec.paths.append(self.path)
                if rec.mode == "redirect" and self.path == "/hook":
                    self.send_response(307)
                    self.send_header("Location", rec.url("/elsewhere"))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif rec.mode == "hang":
                    rec.release.wait(30)
                elif rec.mode == "huge":
                    self.send_response(200)
                    self.end_headers()  # no length: the body runs until the client goes away
                    try:
                        for _ in range(200_000):  # up to 12.8 GB, far beyond any buffer
                            self.wfile.write(b"x" * 65536)
                    except OSError:
                        pass
                else:
                    self.send_response(204)
                    self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()


def _subscribe_and_raise(env: ApiEnv, url: str) -> int:
    """A subscription stored directly (as if registered under another policy) and one alert."""
    with env.conn() as conn, conn.transaction():
        hook = hooks.create_webhook(conn, url=url, secret="s" * 20, events=[], actor="test")
        a = store.NewAlert(
            "s1-pump-000", "bearing", "high", 0.9, 20.0, 10.0, 30.0, {}, None, 5.0, "x"
        )
        store.insert_alert(conn, a, actor="system", now=T0)
    return int(hook["id"])


def _attempts(env: ApiEnv) -> list[tuple[int | None, str | None]]:
    with env.conn() as conn:
        return conn.execute(
            "select status_code, error from webhook_attempts order by id"
        ).fetchall()


REFUSED = [
    "http://169.254.169.254/",
    "http://127.0.0.1:5432/",
    "https://127.0.0.1:5432/",
    "https://localhost/hook",
    "https://user:secret@hooks.example.com/x",
    "http://hooks.example.com/x",
]


def test_registering_an_internal_or_unsafe_destination_is_refused(api_env: ApiEnv) -> None:
    for url in REFUSED:
        r = api_env.client.post("/v1/webhooks", json={"url": url}, headers=api_env.h("admin"))
        assert r.status_code == 422, (url, r.text)
        assert "destination_refused" in r.json()["detail"]
    assert api_env.client.get("/v1/webhooks", headers=api_env.h("admin")).json() == []


def test_listings_redact_urls_and_never_show_secrets(api_env: ApiEnv) -> None:
    url = "https://hooks.example.com/services/T000/B000/XXXXSECRET?token=abc"
    r = api_env.client.post("/v1/webhooks", json={"url": url}, headers=api_env.h("admin"))
    assert r.status_code == 201
    listed = api_env.client.get("/v1/webhooks", headers=api_env.h("admin"))
    assert listed.json()[0]["url"] == "https://hooks.example.com/…"
    assert "XXXXSECRET" not in listed.text and "abc" not in listed.text
    assert r.json()["secret"] not in listed.text


def test_a_host_name_resolving_to_loopback_is_refused_at_delivery(
    api_env: ApiEnv, receiver: Receiver
) -> None:
    """Registration cannot know what a name resolves to later: delivery checks every time."""
    _subscribe_and_raise(api_env, receiver.url(host="localhost"))
    policy = EgressPolicy(allow_http=True)  # http allowed, no internal address
    with api_env.conn() as conn, httpx.Client() as client:
        assert deliver_pending(conn, client, attempts=2, backoff_s=0.01, policy=policy) == (0, 1)
    assert receiver.paths == []
    assert [e.startswith("refused: localhost resolves to") for _c, e in _attempts(api_env)] == [
        True,
        True,
    ]


def test_redirects_are_not_followed(api_env: ApiEnv, receiver: Receiver) -> None:
    receiver.mode = "redirect"
    _subscribe_and_raise(api_env, receiver.url())
    with api_env.conn() as conn, httpx.Client() as client:
        assert deliver_pending(conn, client, attempts=1, backoff_s=0.01, policy=ALLOWED) == (0, 1)
    assert receiver.paths == ["/hook"]
    assert _attempts(api_env) == [(307, "HTTP 307")]


def test_a_receiver_that_never_answers_times_out(api_env: ApiEnv, receiver: Receiver) -> None:
    receiver.mode = "hang"
    _subscribe_and_raise(api_env, receiver.url())
    with api_env.conn() as conn, httpx.Client() as client:
        assert deliver_pending(conn, client, attempts=1, backoff_s=0.01, policy=ALLOWED) == (0, 1)
    [(code, error)] = _attempts(api_env)
    assert code is None and error is not None and "Timeout" in error
    assert str(receiver.port) in error and "/hook" not in error  # the URL only redacted


def test_an_endless_response_body_is_not_read(api_env: ApiEnv, receiver: Receiver) -> None:
    receiver.mode = "huge"
    _subscribe_and_raise(api_env, receiver.url())
    with api_env.conn() as conn, httpx.Client() as client:
        assert deliver_pending(conn, client, attempts=1, backoff_s=0.01, policy=ALLOWED) == (1, 0)
    assert _attempts(api_env) == [(200, None)]

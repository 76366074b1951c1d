from __future__ import annotations

import socket
import urllib.error
import urllib.request

from forewarn.health import LoopHealth


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_loop_is_ready_only_after_a_recent_good_pass() -> None:
    health = LoopHealth("scoring", max_age_s=60)
    port = _free_port()
    server = health.serve(port)
    assert server is not None
    try:
        base = f"http://127.0.0.1:{port}"
        assert _get(base + "/healthz")[0] == 200
        assert _get(base + "/readyz")[0] == 503  # no pass yet
        health.ok(items=7)
        health.failed()
        assert _get(base + "/readyz")[0] == 200
        code, text = _get(base + "/metrics")
        assert code == 200
        assert "forewarn_scoring_passes_total 1.0" in text
        assert "forewarn_scoring_items_total 7.0" in text
        assert "forewarn_scoring_failures_total 1.0" in text
        assert _get(base + "/nothing")[0] == 404
    finally:
        server.shutdown()


def test_stale_loop_is_not_ready() -> None:
    health = LoopHealth("alerts", max_age_s=0.0)
    health.ok()
    health._last -= 1.0  # a pass a second ago is too old for a 0 s budget
    assert not health.ready()
    assert health.serve(0) is None


def test_unauthenticated_endpoints_bind_loopback_by_default_and_the_host_is_a_setting() -> None:
    """Issue 18: /metrics, /healthz, /readyz are not exposed beyond 127.0.0.1 unless asked."""
    from forewarn.settings import load_settings
    from ingest.metrics import IngestMetrics, serve

    assert load_settings().metrics_host == "127.0.0.1"
    assert load_settings(metrics_host="0.0.0.0").metrics_host == "0.0.0.0"
    loop = LoopHealth("scoring", max_age_s=60).serve(_free_port())
    ingest = serve(IngestMetrics(lambda: 0, lambda: {}), _free_port())
    try:
        assert loop is not None and loop.server_address[0] == "127.0.0.1"
        assert ingest.server_address[0] == "127.0.0.1"
    finally:
        for server in (loop, ingest):
            if server is not None:
                server.shutdown()
                server.server_close()

"""Signed webhook deliveries: HMAC-SHA256 over ``"{timestamp}.{body}"``, retried with backoff.

A receiver verifies with :func:`verify_signature`: it recomputes the signature from the
``X-Forewarn-Timestamp`` header and the raw body, and rejects timestamps older than its tolerance
(replay protection). ``X-Forewarn-Delivery`` is stable across retries, so receivers can de-duplicate.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

import httpx
from psycopg import Connection
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from forewarn.storage import webhooks as store

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Forewarn-Signature"
TIMESTAMP_HEADER = "X-Forewarn-Timestamp"
DEFAULT_TOLERANCE_S = 300.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, "{timestamp}.{body}")."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """True when ``signature`` matches and ``timestamp`` is within ``tolerance_s`` of ``now``."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


class DeliveryFailed(Exception):
    pass


def _post(client: httpx.Client, delivery: dict[str, Any], body: bytes) -> int:
    ts = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Forewarn-Event": delivery["event"],
        "X-Forewarn-Delivery": str(delivery["id"]),
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: sign(delivery["secret"], ts, body),
    }
    resp = client.post(delivery["url"], content=body, headers=headers)
    return resp.status_code


def deliver_pending(
    conn: Connection,
    client: httpx.Client,
    *,
    attempts: int = 4,
    backoff_s: float = 0.5,
    backoff_max_s: float = 8.0,
    limit: int = 100,
) -> tuple[int, int]:
    """Send pending deliveries, each retried with exponential backoff; returns (delivered, failed).

    Every attempt is logged in webhook_attempts. Each delivery is sent under a row lock (skip locked)
    and committed on its own, so concurrent senders never send the same delivery and a crash
    re-sends at most the delivery in flight (receivers de-duplicate on the delivery id).
    """
    delivered = failed = 0
    with conn.transaction():
        batch = store.claim_pending(conn, limit)
    for d in batch:
        body = json.dumps(d["payload"], separators=(",", ":"), sort_keys=True).encode()
        n = d["attempts"]
        ok = False
        retrying = Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=backoff_s, max=backoff_max_s),
            retry=retry_if_exception_type(DeliveryFailed),
        )
        with conn.transaction():
            if not store.lock_pending(conn, d["id"]):
                continue  # another sender took it since the listing
            try:
                for attempt in retrying:
                    with attempt:
                        n += 1
                        t0 = time.perf_counter()
                        code: int | None = None
                        error: str | None = None
                        try:
                            code = _post(client, d, body)
                        except httpx.HTTPError as exc:
                            error = f"{type(exc).__name__}: {exc}"[:500]
                        ms = (time.perf_counter() - t0) * 1000
                        store.record_attempt(
                            conn, d["id"], n, status_code=code, error=error, duration_ms=ms
                        )
                        if code is None or not 200 <= code < 300:
                            raise DeliveryFailed(error or f"HTTP {code}")
                ok = True
            except RetryError:
                log.warning(
                    "webhook delivery %s to %s failed after %d attempts", d["id"], d["url"], n
                )
            store.finish_delivery(conn, d["id"], delivered=ok, attempts=n)
        delivered += ok
        failed += not ok
    return delivered, failed

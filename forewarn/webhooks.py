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
from collections.abc import Callable
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

from forewarn import egress
from forewarn.egress import DestinationRefused, EgressPolicy, redact
from forewarn.storage import webhooks as store

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Forewarn-Signature"
TIMESTAMP_HEADER = "X-Forewarn-Timestamp"
DEFAULT_TOLERANCE_S = 300.0
STRICT = EgressPolicy()  # https to public addresses only


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
    """One attempt failed; ``status_code`` is the receiver's answer when there was one."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


# record(attempt_number, status_code, error, duration_ms), called after every attempt
Record = Callable[[int, int | None, str | None, float], None]


def send_with_retries(
    send: Callable[[], int | None],
    record: Record,
    *,
    done_before: int,
    attempts: int,
    backoff_s: float,
    backoff_max_s: float,
) -> tuple[bool, int]:
    """Call ``send`` until it returns (success) or raises DeliveryFailed ``attempts`` times, with
    exponential backoff, recording every attempt; returns (delivered, attempts made so far)."""
    n = done_before
    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=backoff_s, max=backoff_max_s),
        retry=retry_if_exception_type(DeliveryFailed),
    )
    try:
        for attempt in retrying:
            with attempt:
                n += 1
                t0 = time.perf_counter()
                try:
                    code = send()
                except DeliveryFailed as exc:
                    record(n, exc.status_code, str(exc), (time.perf_counter() - t0) * 1000)
                    raise
                record(n, code, None, (time.perf_counter() - t0) * 1000)
    except RetryError:
        return False, n
    return True, n


def _post(client: httpx.Client, delivery: dict[str, Any], body: bytes, policy: EgressPolicy) -> int:
    ts = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Forewarn-Event": delivery["event"],
        "X-Forewarn-Delivery": str(delivery["id"]),
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: sign(delivery["secret"], ts, body),
    }
    try:
        code = egress.post(client, delivery["url"], policy, content=body, headers=headers)
    except DestinationRefused as exc:
        raise DeliveryFailed(f"refused: {exc.detail}"[:500]) from exc
    except httpx.HTTPError as exc:
        # the error names the URL, which may carry a token: keep only its redacted form
        raise DeliveryFailed(f"{type(exc).__name__} ({redact(delivery['url'])})") from exc
    if not 200 <= code < 300:  # a redirect too: it is never followed
        raise DeliveryFailed(f"HTTP {code}", code)
    return code


def deliver_pending(
    conn: Connection,
    client: httpx.Client,
    *,
    attempts: int = 4,
    backoff_s: float = 0.5,
    backoff_max_s: float = 8.0,
    limit: int = 100,
    policy: EgressPolicy = STRICT,
) -> tuple[int, int]:
    """Send pending deliveries, each retried with exponential backoff; returns (delivered, failed).

    Destinations are checked against ``policy`` at every attempt (forewarn/egress.py).

    Every attempt is logged in webhook_attempts. Each delivery is sent under a row lock (skip locked)
    and committed on its own, so concurrent senders never send the same delivery and a crash
    re-sends at most the delivery in flight (receivers de-duplicate on the delivery id).
    """
    delivered = failed = 0
    with conn.transaction():
        batch = store.claim_pending(conn, limit)
    for d in batch:
        body = json.dumps(d["payload"], separators=(",", ":"), sort_keys=True).encode()

        def record(
            n: int, code: int | None, error: str | None, ms: float, _id: int = d["id"]
        ) -> None:
            store.record_attempt(conn, _id, n, status_code=code, error=error, duration_ms=ms)

        with conn.transaction():
            if not store.lock_pending(conn, d["id"]):
                continue  # another sender took it since the listing
            ok, n = send_with_retries(
                lambda d=d, body=body: _post(client, d, body, policy),  # type: ignore[misc]
                record,
                done_before=d["attempts"],
                attempts=attempts,
                backoff_s=backoff_s,
                backoff_max_s=backoff_max_s,
            )
            if not ok:
                log.warning(
                    "webhook delivery %s to %s failed after %d attempts",
                    d["id"],
                    redact(d["url"]),
                    n,
                )
            store.finish_delivery(conn, d["id"], delivered=ok, attempts=n)
        delivered += ok
        failed += not ok
    return delivered, failed

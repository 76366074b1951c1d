"""API keys, roles and the per-route access matrix, enforced for every route in one dependency.

Roles are not a ladder: a maintenance system (CMMS) polls, acknowledges and resolves but does not
dismiss; an operator acknowledges, resolves and dismisses from the dashboard; admins also manage
models, keys and webhooks; viewers read. ``ROUTE_ROLES`` names the roles of every route;
:func:`check_rules` refuses to build an app with a route missing from it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, cast

from fastapi import HTTPException, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool

from forewarn.storage.keys import ApiKey, hash_key, lookup_key

PUBLIC: frozenset[str] = frozenset()
READ = frozenset({"viewer", "operator", "maintenance", "admin"})
ACT = frozenset({"operator", "maintenance", "admin"})  # acknowledge, resolve
DISMISS = frozenset({"operator", "admin"})
ADMIN = frozenset({"admin"})

ROUTE_ROLES: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/v1/health"): PUBLIC,
    ("GET", "/v1/ready"): PUBLIC,
    ("GET", "/metrics"): READ,
    ("GET", "/v1/machines"): READ,
    ("GET", "/v1/machines/{machine_id}"): READ,
    ("GET", "/v1/machines/{machine_id}/readings"): READ,
    ("POST", "/v1/machines"): ADMIN,
    ("GET", "/v1/sites"): READ,
    ("POST", "/v1/sites"): ADMIN,
    ("POST", "/v1/lines"): ADMIN,
    ("GET", "/v1/machine-types"): READ,
    ("GET", "/v1/machine-types/{type_id}"): READ,
    ("PUT", "/v1/machine-types/{type_id}"): ADMIN,
    ("GET", "/v1/predictions"): READ,
    ("GET", "/v1/alerts"): READ,
    ("GET", "/v1/alerts/changes"): READ,
    ("GET", "/v1/alerts/{alert_id}"): READ,
    ("POST", "/v1/alerts/{alert_id}/acknowledge"): ACT,
    ("POST", "/v1/alerts/{alert_id}/resolve"): ACT,
    ("POST", "/v1/alerts/{alert_id}/dismiss"): DISMISS,
    ("GET", "/v1/models"): READ,
    ("POST", "/v1/models/{name}/promote"): ADMIN,
    ("POST", "/v1/models/{name}/rollback"): ADMIN,
    ("GET", "/v1/policy"): READ,
    ("POST", "/v1/policy/promote"): ADMIN,
    ("GET", "/v1/roi"): READ,
    ("GET", "/v1/roi/ledger"): READ,
    ("GET", "/v1/roi/backtest"): READ,
    ("POST", "/v1/roi/what-if"): READ,
    ("GET", "/v1/webhooks"): ADMIN,
    ("POST", "/v1/webhooks"): ADMIN,
    ("DELETE", "/v1/webhooks/{webhook_id}"): ADMIN,
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): ADMIN,
    ("GET", "/v1/alerts/{alert_id}/people"): READ,
    ("POST", "/v1/alerts/{alert_id}/assign"): ACT,
    ("POST", "/v1/alerts/{alert_id}/comments"): ACT,
    ("GET", "/v1/users"): ADMIN,
    ("POST", "/v1/users"): ADMIN,
    ("DELETE", "/v1/users/{user_id}"): ADMIN,
    ("GET", "/v1/notifications"): ADMIN,
    ("GET", "/v1/notifications/channels"): ADMIN,
    ("POST", "/v1/notifications/channels"): ADMIN,
    ("DELETE", "/v1/notifications/channels/{channel_id}"): ADMIN,
    ("GET", "/v1/notifications/rules"): ADMIN,
    ("POST", "/v1/notifications/rules"): ADMIN,
    ("DELETE", "/v1/notifications/rules/{rule_id}"): ADMIN,
    ("GET", "/v1/notifications/mutes"): ADMIN,
    ("POST", "/v1/notifications/mutes"): ADMIN,
    ("DELETE", "/v1/notifications/mutes/{mute_id}"): ADMIN,
    ("GET", "/v1/keys"): ADMIN,
    ("POST", "/v1/keys"): ADMIN,
    ("DELETE", "/v1/keys/{name}"): ADMIN,
}
# Framework routes that carry no data: the OpenAPI document and its viewers.
DOC_PATHS = frozenset(
    {
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/static-docs",
        "/static-docs/redoc.standalone.js",
    }
)

KEY_CACHE_TTL_S = 5.0  # a revoked key stops working within this time

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")
_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")


def api_routes(routes: Sequence[object]) -> Iterator[APIRoute]:
    """Every APIRoute, also inside included routers (FastAPI >= 0.130 keeps them lazily nested)."""
    for r in routes:
        if isinstance(r, APIRoute):
            yield r
        elif hasattr(r, "effective_route_contexts"):
            for ctx in r.effective_route_contexts():
                if isinstance(ctx.original_route, APIRoute):
                    yield ctx.original_route
        elif hasattr(r, "routes"):
            yield from api_routes(r.routes)


def check_rules(routes: Sequence[object]) -> None:
    """Raise unless every API route has an entry in ROUTE_ROLES (and every entry a route).

    Also writes each route's roles into its OpenAPI description.
    """
    seen = set()
    for r in api_routes(routes):
        for method in r.methods or ():
            roles = ROUTE_ROLES.get((method, r.path))
            if roles is None:
                raise RuntimeError(f"route {method} {r.path} has no entry in ROUTE_ROLES")
            seen.add((method, r.path))
            note = "**Roles:** " + (", ".join(sorted(roles)) if roles else "public (no key)")
            if note not in (r.description or ""):
                r.description = f"{r.description or ''}\n\n{note}".strip()
    stale = set(ROUTE_ROLES) - seen
    if stale:
        raise RuntimeError(f"ROUTE_ROLES names routes that do not exist: {sorted(stale)}")


class TokenBucket:
    """Per-key rate limit: ``rate_per_min`` requests a minute with bursts up to the same number.

    Keyed by API key id after authentication, and by client address before it (every unknown
    key costs a database lookup, so guessing keys is throttled per address).
    """

    MAX_BUCKETS = 100_000  # forget everyone past this many distinct clients (memory bound)

    def __init__(self, rate_per_min: int) -> None:
        self.capacity = float(rate_per_min)
        self.refill_per_s = rate_per_min / 60.0
        self._buckets: dict[Hashable, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: Hashable, now: float) -> float:
        """0 when allowed, otherwise the seconds until a token is available."""
        with self._lock:
            if len(self._buckets) >= self.MAX_BUCKETS and key_id not in self._buckets:
                self._buckets.clear()
            tokens, last = self._buckets.get(key_id, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.refill_per_s)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / self.refill_per_s


@dataclass
class KeyCache:
    """Verified keys by hash for a few seconds, so a hot polling loop does not hit the database."""

    ttl_s: float = KEY_CACHE_TTL_S
    _entries: dict[str, tuple[ApiKey, float]] = field(default_factory=dict)

    def clear(self) -> None:
        self._entries.clear()

    def cached(self, key: str, now: float) -> ApiKey | None:
        """The key if verified less than ``ttl_s`` ago (no I/O: safe on the event loop)."""
        hit = self._entries.get(hash_key(key))
        return hit[0] if hit is not None and hit[1] > now else None

    def get(self, pool: ConnectionPool, key: str, now: float) -> ApiKey | None:
        """Look the key up in the database (blocking) and cache a match."""
        digest = hash_key(key)
        with pool.connection() as conn:
            found = lookup_key(conn, key)
        if found is None:
            self._entries.pop(digest, None)
            return None
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[digest] = (found, now + self.ttl_s)
        return found


async def authorize(
    request: Request,
    api_key: Annotated[str | None, Security(_api_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> ApiKey | None:
    """Enforce ROUTE_ROLES for the matched route: 401 without a valid key, 403 for a wrong role."""
    route = request.scope.get("route")
    path = getattr(route, "path", "")
    roles = ROUTE_ROLES.get((request.method, path))
    if roles is None:  # check_rules makes this unreachable; fail closed anyway
        raise HTTPException(403, "this route has no access rule")
    if roles is PUBLIC:
        return None
    supplied = api_key or (bearer.credentials if bearer else None)
    if not supplied:
        raise HTTPException(
            401,
            "missing API key: send X-API-Key or Authorization: Bearer",
            {"WWW-Authenticate": "Bearer"},
        )
    state = request.app.state
    now = time.monotonic()
    key = state.keys.cached(supplied, now)
    if key is None:
        # before the database lookup: a client trying keys is throttled by its address
        client = request.client.host if request.client else ""
        wait = state.auth_limiter.take(client, now)
        if wait > 0:
            raise HTTPException(
                429,
                "too many key lookups from this address",
                {"Retry-After": str(max(1, round(wait)))},
            )
        key = await run_in_threadpool(state.keys.get, state.pool, supplied, now)
    if key is None:
        raise HTTPException(401, "invalid or revoked API key", {"WWW-Authenticate": "Bearer"})
    if key.role not in roles:
        raise HTTPException(
            403, f"role {key.role!r} may not {request.method} {path}; needs one of {sorted(roles)}"
        )
    wait = state.limiter.take(key.id, now)
    if wait > 0:
        raise HTTPException(429, "rate limit exceeded", {"Retry-After": str(max(1, round(wait)))})
    request.state.key = key
    return cast("ApiKey | None", key)

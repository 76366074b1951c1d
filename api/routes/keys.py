"""API keys (admins): list, create (the key is shown once), revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from api.deps import Caller, Conn, Now
from api.schemas import KeyCreate, KeyCreated, KeyInfo, Problem
from forewarn.errors import NotFound
from forewarn.storage import keys as store

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.get("", response_model=list[KeyInfo])
def list_keys(conn: Conn) -> list[KeyInfo]:
    """Every key by name, role and prefix (never the key)."""
    return [KeyInfo(**r) for r in store.list_keys(conn)]  # type: ignore[arg-type]


@router.post("", response_model=KeyCreated, status_code=201, responses={409: {"model": Problem}})
def create_key(conn: Conn, caller: Caller, body: KeyCreate) -> KeyCreated:
    """Create a key; the response is the only time it is shown."""
    key = store.create_key(conn, body.name, body.role)
    store.audit(conn, caller.name, "key.create", body.name)
    return KeyCreated(name=body.name, role=body.role, prefix=store.key_prefix(key), key=key)


@router.delete("/{name}", status_code=204, responses={404: {"model": Problem}})
def revoke_key(
    request: Request,
    conn: Conn,
    caller: Caller,
    now: Now,
    name: Annotated[str, Path(min_length=1, max_length=100)],
) -> Response:
    """Revoke a key (at once in this process; within a few seconds in other API processes)."""
    if not store.revoke_key(conn, name, now=now):
        raise NotFound(f"no active key named {name!r}")
    request.app.state.keys.clear()
    store.audit(conn, caller.name, "key.revoke", name)
    return Response(status_code=204)

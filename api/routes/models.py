"""Model versions; promote and roll back aliases (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import Caller, Conn
from api.schemas import AliasChange, ModelVersion, Problem, PromoteRequest, RollbackRequest
from forewarn.storage import model_registry as store

router = APIRouter(prefix="/v1/models", tags=["models"])
ModelName = Annotated[str, Path(min_length=1, max_length=200)]


@router.get("", response_model=list[ModelVersion])
def list_models(
    conn: Conn, name: Annotated[str | None, Query(max_length=200)] = None
) -> list[ModelVersion]:
    """Every model version with its metrics, training window and aliases."""
    return [ModelVersion(**r) for r in store.list_versions(conn, name)]


@router.post(
    "/{name}/promote",
    response_model=AliasChange,
    responses={404: {"model": Problem}},
)
def promote(conn: Conn, caller: Caller, name: ModelName, body: PromoteRequest) -> AliasChange:
    """Point an alias (default champion) at a version, in one audited transaction."""
    with conn.transaction():
        change = store.promote(conn, name, body.version, body.alias, actor=caller.name)
    return AliasChange(**change)


@router.post(
    "/{name}/rollback",
    response_model=AliasChange,
    responses={404: {"model": Problem}, 409: {"model": Problem}},
)
def rollback(conn: Conn, caller: Caller, name: ModelName, body: RollbackRequest) -> AliasChange:
    """Point an alias back at the version it had before its latest move."""
    with conn.transaction():
        change = store.rollback(conn, name, body.alias, actor=caller.name)
    return AliasChange(**change)

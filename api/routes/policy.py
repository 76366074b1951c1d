"""The alert policy: the live version and its figures (all readers); promote a version (admins)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Caller, Conn, SettingsDep
from api.schemas import Problem
from forewarn.storage import policies as store
from models.policy import settings_policy

router = APIRouter(prefix="/v1/policy", tags=["policy"])


class PolicyPromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=2**63 - 1, description="The stored policy version to make live.")


class PolicyChange(BaseModel):
    version: int
    previous_version: int | None


@router.get("")
def show(conn: Conn, settings: SettingsDep) -> dict[str, Any]:
    """The live policy version (per machine type), its backtested figures and recent versions."""
    return store.policy_overview(conn, settings_policy(settings).to_dict())


@router.post("/promote", response_model=PolicyChange, responses={404: {"model": Problem}})
def promote(conn: Conn, caller: Caller, body: PolicyPromoteRequest) -> PolicyChange:
    """Make a stored version the live policy (audited); the alert engine uses it from its next pass."""
    with conn.transaction():
        change = store.promote_policy(conn, body.version, actor=caller.name)
    return PolicyChange(**change)

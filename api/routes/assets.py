"""The asset registry over HTTP: sites, lines, machine types (with versions) and machines.

Reads for every role; writes for admins, each through :func:`forewarn.storage.assets.apply_assets`
(the function `forewarn assets import` uses): one transaction, audited with the caller's key name,
and a change of a type's sensors, bounds, failure modes or costs, or of a machine's type, is a new
version valid from the plant's now. ``GET /v1/machines`` keeps its risk-ranked listing
(:mod:`api.routes.machines`); this module adds ``POST /v1/machines``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response

from api.deps import Caller, Conn, Now
from api.schemas import Problem
from forewarn.asset_file import AssetFile, LineIn, MachineIn, MachineTypeIn, SiteIn
from forewarn.errors import NotFound
from forewarn.storage import assets as store

router = APIRouter(tags=["assets"])
TypeId = Annotated[str, Path(min_length=1, max_length=100)]
# 201 when something was created, 200 when an existing entry was updated or left unchanged.
WRITES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Updated or unchanged"},
    400: {"model": Problem},
    422: {"model": Problem},
}


def _apply(conn: Conn, caller: Caller, now: Now, doc: AssetFile, response: Response) -> Any:
    changes = store.apply_assets(conn, doc, actor=caller.name, now=now)
    response.status_code = 201 if changes.created else 200
    return changes.as_dict()


@router.get("/v1/sites")
def list_sites(conn: Conn) -> list[dict[str, Any]]:
    """Sites with their lines and number of machines."""
    return store.site_list(conn)


@router.post("/v1/sites", responses=WRITES, status_code=201)
def put_site(conn: Conn, caller: Caller, now: Now, body: SiteIn, response: Response) -> Any:
    """Create or rename a site (201 when created, 200 otherwise); audited."""
    return _apply(conn, caller, now, AssetFile(sites=[body]), response)


@router.post("/v1/lines", responses=WRITES, status_code=201)
def put_line(conn: Conn, caller: Caller, now: Now, body: LineIn, response: Response) -> Any:
    """Create or update a line of an existing site; audited."""
    return _apply(conn, caller, now, AssetFile(lines=[body]), response)


@router.get("/v1/machine-types")
def list_machine_types(conn: Conn) -> list[dict[str, Any]]:
    """Machine types: sensors (units, bounds), failure modes, costs, currency, current version."""
    return store.machine_type_list(conn)


@router.get("/v1/machine-types/{type_id}", responses={404: {"model": Problem}})
def get_machine_type(conn: Conn, type_id: TypeId) -> dict[str, Any]:
    """One machine type with every version and the time each became valid."""
    found = [t for t in store.machine_type_list(conn) if t["id"] == type_id]
    if not found:
        raise NotFound(f"machine type {type_id!r} does not exist")
    return {**found[0], "versions": store.type_versions(conn, type_id)}


@router.put("/v1/machine-types/{type_id}", responses=WRITES, status_code=201)
def put_machine_type(
    conn: Conn, caller: Caller, now: Now, type_id: TypeId, body: MachineTypeIn, response: Response
) -> Any:
    """Create a machine type, or change it as a new version valid from now; audited."""
    if body.id != type_id:
        raise HTTPException(422, f"body id {body.id!r} differs from the path's {type_id!r}")
    return _apply(conn, caller, now, AssetFile(machine_types=[body]), response)


@router.post("/v1/machines", responses=WRITES, status_code=201)
def put_machine(conn: Conn, caller: Caller, now: Now, body: MachineIn, response: Response) -> Any:
    """Register a machine, or move it (a change of type is a new version valid from now); audited."""
    return _apply(conn, caller, now, AssetFile(machines=[body]), response)

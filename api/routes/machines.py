"""Machines with their latest risk, and a machine's downsampled readings."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response
from fastapi.concurrency import run_in_threadpool

from api.deps import Conn, Now, Pool, ReadPool
from api.schemas import MachineDetail, MachineSummary, Problem, Reading, Readings, Risk
from api.timeparams import TimeParam, check_time
from forewarn.errors import NotFound
from forewarn.storage import machines as store

router = APIRouter(prefix="/v1/machines", tags=["machines"])
MachineId = Annotated[str, Path(min_length=1, max_length=200)]
MAX_BUCKETS = 10_000


def _risk(r: dict[str, Any]) -> Risk | None:
    if r["risk_ts"] is None:
        return None
    return Risk(
        ts=r["risk_ts"],
        failure_prob=r["failure_prob"],
        rul_h=r["rul_h"],
        rul_low_h=r["rul_low_h"],
        rul_high_h=r["rul_high_h"],
        mode=r["risk_mode"],
        data_quality=r["data_quality"],
        model_version_id=r["model_version_id"],
    )


@router.get("", response_model=list[MachineSummary])
async def list_machines(
    pool: Pool,
    read_pool: ReadPool,
    site_id: Annotated[str | None, Query(max_length=200)] = None,
    type_id: Annotated[str | None, Query(max_length=200)] = None,
    order: Literal["id", "risk"] = "id",
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    """Every machine with its latest champion prediction (risk) and number of open alerts."""

    filters: dict[str, Any] = {
        "site_id": site_id,
        "type_id": type_id,
        "order": order,
        "limit": limit,
        "offset": offset,
    }
    if read_pool is not None:
        async with read_pool.connection() as aconn:
            body = await store.list_machines_json_async(aconn, **filters)
        return Response(body, media_type="application/json")

    def query() -> str:
        with pool.connection() as conn:
            return store.list_machines_json(conn, **filters)

    return Response(await run_in_threadpool(query), media_type="application/json")


@router.get("/{machine_id}", response_model=MachineDetail, responses={404: {"model": Problem}})
def get_machine(conn: Conn, machine_id: MachineId) -> MachineDetail:
    """One machine: type and sensors, latest reading, latest risk, open alerts."""
    r = store.machine_detail(conn, machine_id)
    if r is None:
        raise NotFound(f"machine {machine_id!r} does not exist")
    reading = None
    if r["reading_ts"] is not None:
        reading = Reading(ts=r["reading_ts"], values=r["reading_values"])
    return MachineDetail(
        id=r["id"],
        site_id=r["site_id"],
        line_id=r["line_id"],
        type_id=r["type_id"],
        type_name=r["type_name"],
        sensors=r["sensors"],
        failure_modes=list(r["failure_modes"]),
        installed_at=r["installed_at"],
        latest_reading=reading,
        risk=_risk(r),
        open_alert_ids=r["open_alert_ids"],
    )


@router.get(
    "/{machine_id}/readings",
    response_model=Readings,
    responses={404: {"model": Problem}, 422: {"model": Problem}},
)
def get_readings(
    conn: Conn,
    now: Now,
    machine_id: MachineId,
    start: TimeParam = None,
    end: TimeParam = None,
    bucket_s: Annotated[int, Query(ge=1, le=7 * 86400, description="Bucket width, seconds.")] = 60,
    sensor: Annotated[
        list[str] | None, Query(max_length=50, description="Only these sensors.")
    ] = None,
) -> Readings:
    """Readings averaged per time bucket (avg/min/max/count per sensor); default the last 24 hours."""
    end = check_time(end, "end") or now
    start = check_time(start, "start") or end - timedelta(hours=24)
    if start >= end:
        raise HTTPException(422, "start must be before end")
    if (end - start).total_seconds() / bucket_s > MAX_BUCKETS:
        raise HTTPException(
            422, f"at most {MAX_BUCKETS} buckets: widen bucket_s or narrow the window"
        )
    if not store.machine_exists(conn, machine_id):
        raise NotFound(f"machine {machine_id!r} does not exist")
    rows = store.downsampled_readings(
        conn, machine_id, start=start, end=end, bucket_s=bucket_s, sensors=sensor
    )
    return Readings(machine_id=machine_id, start=start, end=end, bucket_s=bucket_s, points=rows)  # type: ignore[arg-type]

"""A simple return-on-investment summary from alerts, machine events and machine-type costs."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query

from api.deps import Conn, Now
from api.schemas import Problem, RoiSummary
from forewarn.errors import NotFound
from forewarn.storage import machines as store
from forewarn.storage import roi as roi_store
from models.roi import reprice

router = APIRouter(prefix="/v1/roi", tags=["roi"])


@router.get("", response_model=RoiSummary)
def roi(conn: Conn, now: Now, days: Annotated[float, Query(gt=0, le=3650)] = 30) -> RoiSummary:
    """Alerts acted on, failures and estimated savings over the last ``days``."""
    since = now - timedelta(days=days)
    r = store.roi_summary(conn, since=since, until=now)
    return RoiSummary(
        since=since,
        until=now,
        alerts_raised=r["raised"],
        alerts_resolved=r["resolved"],
        alerts_dismissed=r["dismissed"],
        alerts_open_now=r["open_now"],
        failures=r["failures"],
        maintenance_events=r["maintenance"],
        failure_cost=r["failure_cost"],
        estimated_savings=r["estimated_savings"],
    )


@router.get("/ledger")
def ledger(
    conn: Conn, now: Now, days: Annotated[float, Query(gt=0, le=3650)] = 30
) -> dict[str, Any]:
    """The live ledger: failures avoided by resolved alerts, false alarms dismissed, net savings."""
    return roi_store.ledger(conn, since=now - timedelta(days=days), until=now)


@router.get("/backtest", responses={404: {"model": Problem}})
def latest_backtest(conn: Conn) -> dict[str, Any]:
    """The latest `forewarn backtest`: cost per policy, savings, the chosen threshold."""
    b = roi_store.latest_backtest(conn)
    if b is None:
        raise NotFound("no backtest stored yet: run `forewarn backtest`")
    return b


@router.post("/what-if", responses={404: {"model": Problem}})
def what_if(
    conn: Conn,
    costs: Annotated[
        dict[str, dict[str, float]],
        Body(
            embed=True,
            description='Machine type (or "*") -> cost fields, e.g. {"pump": {"repair_cost": 9000}}',
        ),
    ],
    backtest_id: Annotated[int | None, Body(embed=True, ge=1)] = None,
) -> dict[str, Any]:
    """The stored backtest re-priced with other costs: savings and the best threshold."""
    try:
        out = reprice(roi_store.backtest_summary(conn, backtest_id=backtest_id), costs)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if out is None:
        raise NotFound("no backtest stored yet: run `forewarn backtest`")
    return out

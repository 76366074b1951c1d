"""A simple return-on-investment summary from alerts, machine events and machine-type costs."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import Conn, Now
from api.schemas import RoiSummary
from forewarn.storage import machines as store

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

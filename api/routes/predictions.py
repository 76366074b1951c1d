"""Model predictions (champion, challenger, online), newest first."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query

from api.deps import Conn
from api.schemas import Prediction
from api.timeparams import TimeParam, check_time
from forewarn.storage import machines as store

router = APIRouter(prefix="/v1/predictions", tags=["predictions"])


@router.get("", response_model=list[Prediction])
def list_predictions(
    conn: Conn,
    machine_id: Annotated[str | None, Query(max_length=200)] = None,
    role: Literal["champion", "challenger", "online"] | None = None,
    start: TimeParam = None,
    end: TimeParam = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[Prediction]:
    """Predictions filtered by machine, role and time window [start, end)."""
    start, end = check_time(start, "start"), check_time(end, "end")
    if start is not None and end is not None and start >= end:
        raise HTTPException(422, "start must be before end")
    rows = store.predictions(
        conn, machine_id=machine_id, role=role, start=start, end=end, limit=limit
    )
    return [Prediction(**r) for r in rows]

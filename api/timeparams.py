"""Time query parameters: ISO 8601, naive means UTC, bounded to years PostgreSQL and Python share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import HTTPException, Query

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

TimeParam = Annotated[datetime | None, Query(description="ISO 8601; naive means UTC.")]


def check_time(value: datetime | None, name: str) -> datetime | None:
    """``value`` as an aware UTC datetime within [1970, 2200), or a 422 naming the parameter."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        if not EARLIEST <= value < LATEST:
            raise HTTPException(422, f"{name} must be between 1970 and 2200")
    except OverflowError:
        raise HTTPException(422, f"{name} is out of range") from None
    return value

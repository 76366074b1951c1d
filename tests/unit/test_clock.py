"""The one plant clock: fixed, wall and database-read clocks; the plant clock never goes back."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from forewarn.clock import FixedClock, PlantClock, WallClock, clock_for

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_fixed_clock_moves_only_when_told() -> None:
    c = FixedClock(T0)
    assert c.now() == T0 and c.now() == T0
    assert c.advance(90) == T0 + timedelta(seconds=90) == c.now()


def test_wall_clock_is_aware_utc() -> None:
    now = WallClock().now()
    assert now.tzinfo is not None and abs((datetime.now(UTC) - now).total_seconds()) < 5


def test_the_plant_clock_never_goes_backwards() -> None:
    readings = [T0 + timedelta(hours=5), T0 + timedelta(hours=3), T0 + timedelta(hours=7)]

    @contextmanager
    def connect() -> Any:
        yield None

    clock = PlantClock(connect, read=lambda _conn: readings.pop(0))
    # newest reading 5 h, then retention dropped it (3 h), then data moved on (7 h)
    assert [clock.now() for _ in range(3)] == [
        T0 + timedelta(hours=5),
        T0 + timedelta(hours=5),
        T0 + timedelta(hours=7),
    ]
    assert isinstance(clock_for("wall"), WallClock)
    assert isinstance(clock_for("plant", connect), PlantClock)

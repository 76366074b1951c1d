"""The one plant clock: what "now" means for every service and every write made for the plant.

A simulated or replayed plant runs on its own time (one simulated hour per wall second in the demo,
a dataset's own timestamps in a replay); a live plant runs on the wall clock. Everything stamped on
the plant's behalf — alert transitions, acknowledgements, maintenance events, ledger entries,
predictions, drift events, training windows, escalation timers — takes its time from one
:class:`Clock`, so the two are never mixed::

    Clock (protocol: now() -> aware UTC datetime)
     +-- WallClock      the wall clock (FOREWARN_CLOCK=wall: a live plant)
     +-- PlantClock     the plant's newest stored reading, never ahead of the wall clock and never
     |                  going backwards (FOREWARN_CLOCK=plant, the default: demos, replays, and a
     |                  live plant alike, where the newest reading *is* the wall clock)
     +-- FixedClock     a clock that moves only when told (tests, backtests)

Services build theirs once with :func:`clock_for` and pass ``clock.now()`` down as ``now=``; pure
code never reads a clock itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from psycopg import Connection

ClockMode = Literal["plant", "wall"]


class Clock(Protocol):
    """Gives the plant's "now" as an aware UTC datetime."""

    def now(self) -> datetime: ...


def wall_now() -> datetime:
    """The wall clock (aware UTC). Only process-level timing uses it directly, never plant data."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class WallClock:
    """The wall clock: a live plant's time."""

    def now(self) -> datetime:
        return wall_now()


@dataclass(slots=True)
class FixedClock:
    """A clock that moves only when told: tests and backtests."""

    at: datetime

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> datetime:
        self.at = self.at + timedelta(seconds=seconds)
        return self.at


def plant_time(conn: Connection, wall: datetime | None = None) -> datetime:
    """The plant's time read from the database: its newest reading, never ahead of the wall clock.

    An empty plant is at the wall clock.
    """
    from forewarn.storage.readings import latest_reading_time

    wall = wall or wall_now()
    latest = latest_reading_time(conn)
    return wall if latest is None else min(latest, wall)


@dataclass(slots=True)
class PlantClock:
    """The plant's clock read from the database through ``read`` (a function of a connection).

    It never goes backwards in one process, even when retention drops the newest rows or a
    replica lags: the highest time it returned is a floor.
    """

    connect: Callable[[], object]  # a context manager yielding a psycopg Connection
    read: Callable[[Connection], datetime] = plant_time
    _floor: datetime | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now(self) -> datetime:
        with self.connect() as conn:  # type: ignore[attr-defined]
            t = self.read(conn)
        return self.observe(t)

    def observe(self, t: datetime) -> datetime:
        """Feed a plant time read elsewhere (e.g. inside the caller's transaction); returns now."""
        with self._lock:
            if self._floor is None or t > self._floor:
                self._floor = t
            return self._floor


def now_on(conn: Connection, mode: ClockMode = "plant") -> datetime:
    """The plant's "now" read on ``conn`` (``mode`` from ``settings.clock``)."""
    return plant_time(conn) if mode == "plant" else wall_now()


def clock_for(mode: ClockMode, connect: Callable[[], object] | None = None) -> Clock:
    """The clock a service uses: ``settings.clock`` and a connection factory for the plant clock."""
    if mode == "wall":
        return WallClock()
    if connect is None:
        raise ValueError("the plant clock reads the database: pass connect=")
    return PlantClock(connect)

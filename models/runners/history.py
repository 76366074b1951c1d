"""Read plant history from the database as the hourly frames the models use.

The hourly means are computed in SQL (forewarn.storage.readings.hourly_means);
`models.frames.hourly_frame` is the in-memory twin used for simulated history, and a test holds
the two equal on the same readings.

A machine whose type changed keeps its older readings under its older type: a frame of one type
holds each machine's readings (and events) from the periods it had that type only (``periods``, from
:func:`forewarn.storage.assets.machine_type_periods`), and the hour it took the type starts a new episode. Training therefore
learns each type from the readings taken as that type, and scoring sees a machine's readings since
it took its current type.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from psycopg import Connection

from forewarn.assets import MachineType, Periods
from forewarn.storage.assets import load_registry
from forewarn.storage.events import failures_and_maintenance
from forewarn.storage.readings import hourly_means
from models.frames import (
    events_frame,
    finish_hourly,
    period_starts,
    restart_flags,
    within_periods,
)

REREAD = timedelta(hours=2)  # held hours read again each pass: late readings for them count
FULL_READ_EVERY_S = 24 * 3600.0  # and the whole window now and then (wall clock)


def machine_types(conn: Connection) -> list[tuple[MachineType, list[str]]]:
    """Each machine type with sensors, and the ids of its machines."""
    reg = load_registry(conn)
    out = []
    for t in reg.types:
        ids = [m.id for m in reg.machines if m.type_id == t.id]
        if ids and t.sensors:
            out.append((t, ids))
    return out


def members(ids: Sequence[str], periods: Periods) -> list[str]:
    """The machines of a type now (``ids``) and those that had it before (``periods``)."""
    return sorted(set(ids) | set(periods))


def hourly_from_db(
    conn: Connection,
    machine_ids: Sequence[str],
    sensors: Sequence[str],
    start: datetime | None,
    end: datetime | None,
    periods: Periods | None = None,
) -> pd.DataFrame:
    """Per machine and hour in ``[start, end)``: sensor means, regime, t_h, maintenance flag.

    With ``periods``, only the readings and events of a machine's periods count, and the hour a
    period starts is flagged as a new episode (``maintenance``)."""
    rows = hourly_means(conn, machine_ids, sensors, start, end, periods)
    hourly = pd.DataFrame(rows, columns=["machine_id", "ts", "regime", *sensors])
    return _finish(conn, hourly, machine_ids, sensors, start, end, periods)


def _finish(
    conn: Connection,
    hourly: pd.DataFrame,
    machine_ids: Sequence[str],
    sensors: Sequence[str],
    start: datetime | None,
    end: datetime | None,
    periods: Periods | None,
) -> pd.DataFrame:
    """The hourly means with the window's events: episodes, maintenance flags, time columns."""
    events = events_from_db(conn, machine_ids, start, end, periods)
    out = finish_hourly(hourly, events, sensors)
    if periods:
        out["maintenance"] = out["maintenance"].to_numpy() | restart_flags(
            out, period_starts(periods)
        )
    return out


@dataclass
class HourlyWindow:
    """A sliding window of hourly means kept between scoring passes (see :func:`hourly_window`)."""

    ids: tuple[str, ...]
    sensors: tuple[str, ...]
    periods: Periods | None
    end: datetime  # the means of every hour before this are held
    means: pd.DataFrame
    loaded_at: float  # monotonic time of the last full read


def hourly_window(
    conn: Connection,
    held: HourlyWindow | None,
    machine_ids: Sequence[str],
    sensors: Sequence[str],
    start: datetime,
    end: datetime,
    periods: Periods | None = None,
) -> tuple[pd.DataFrame, HourlyWindow]:
    """:func:`hourly_from_db` for ``[start, end)``, reading only the hours ``held`` lacks.

    The window slides by an hour each scoring hour, so a full read would go over every reading of
    the whole look-back (8 days per machine) every hour. Held means are kept; the hours from
    ``REREAD`` before the held end are read again (readings that arrived late for them count), and
    everything is read afresh once ``FULL_READ_EVERY_S`` has passed or when the machines, sensors
    or periods changed. Events are few and read for the whole window. Returns the same frame as
    :func:`hourly_from_db` (a test holds them equal) and the window to keep.
    """
    ids, names = tuple(machine_ids), tuple(sensors)
    now_s = time.monotonic()
    fresh = (
        held is None
        or held.ids != ids
        or held.sensors != names
        or held.periods != periods
        or held.end > end
        or now_s - held.loaded_at >= FULL_READ_EVERY_S
    )
    columns = ["machine_id", "ts", "regime", *names]
    if fresh:
        means = pd.DataFrame(hourly_means(conn, ids, names, start, end, periods), columns=columns)
        loaded_at = now_s
    else:
        assert held is not None
        since = max(held.end - REREAD, start)
        new = pd.DataFrame(hourly_means(conn, ids, names, since, end, periods), columns=columns)
        old = held.means
        keep = old[(old["ts"] >= start) & (old["ts"] < since)] if len(old) else old
        means = pd.concat([keep, new], ignore_index=True) if len(keep) else new
        means = means.sort_values(["machine_id", "ts"], kind="stable", ignore_index=True)
        loaded_at = held.loaded_at
    window = HourlyWindow(ids, names, periods, end, means, loaded_at)
    return _finish(conn, means.copy(), ids, names, start, end, periods), window


def events_from_db(
    conn: Connection,
    machine_ids: Sequence[str],
    start: datetime | None,
    end: datetime | None,
    periods: Periods | None = None,
) -> pd.DataFrame:
    """Failures and maintenance of the machines in ``[start, end)`` (within ``periods``)."""
    events = events_frame(failures_and_maintenance(conn, machine_ids, start, end))
    return within_periods(events, periods) if periods else events

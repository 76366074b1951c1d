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

from collections.abc import Sequence
from datetime import datetime

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
    events = events_from_db(conn, machine_ids, start, end, periods)
    out = finish_hourly(hourly, events, sensors)
    if periods:
        out["maintenance"] = out["maintenance"].to_numpy() | restart_flags(
            out, period_starts(periods)
        )
    return out


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

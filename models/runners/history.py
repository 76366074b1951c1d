"""Read plant history from the database as the hourly frames the models use.

The hourly means are computed in SQL (forewarn.storage.readings.hourly_means);
`models.frames.hourly_frame` is the in-memory twin used for simulated history, and a test holds
the two equal on the same readings.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
from psycopg import Connection

from forewarn.assets import MachineType
from forewarn.storage.assets import load_registry
from forewarn.storage.events import failures_and_maintenance
from forewarn.storage.readings import hourly_means
from models.frames import events_frame, finish_hourly


def machine_types(conn: Connection) -> list[tuple[MachineType, list[str]]]:
    """Each machine type with sensors, and the ids of its machines."""
    reg = load_registry(conn)
    out = []
    for t in reg.types:
        ids = [m.id for m in reg.machines if m.type_id == t.id]
        if ids and t.sensors:
            out.append((t, ids))
    return out


def hourly_from_db(
    conn: Connection,
    machine_ids: Sequence[str],
    sensors: Sequence[str],
    start: datetime | None,
    end: datetime | None,
) -> pd.DataFrame:
    """Per machine and hour in ``[start, end)``: sensor means, regime, t_h, maintenance flag."""
    rows = hourly_means(conn, machine_ids, sensors, start, end)
    hourly = pd.DataFrame(rows, columns=["machine_id", "ts", "regime", *sensors])
    return finish_hourly(hourly, events_from_db(conn, machine_ids, start, end), sensors)


def events_from_db(
    conn: Connection, machine_ids: Sequence[str], start: datetime | None, end: datetime | None
) -> pd.DataFrame:
    """Failures and maintenance of the machines in ``[start, end)``."""
    return events_frame(failures_and_maintenance(conn, machine_ids, start, end))

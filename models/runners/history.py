"""Read plant history from the database as the hourly frames the models use.

The hourly means are computed in SQL (one pass over readings, no JSON decoding in Python);
`models.frames.hourly_frame` is the in-memory twin used for simulated history, and a test holds
the two equal on the same readings.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
from psycopg import Connection, sql

from forewarn.assets import MachineType
from forewarn.storage.assets import load_registry
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
    means = sql.SQL(", ").join(
        sql.SQL("avg((values ->> {})::float8) as {}").format(sql.Literal(s), sql.Identifier(s))
        for s in sensors
    )
    query = sql.SQL(
        "select machine_id, date_trunc('hour', ts) as ts, max(regime) as regime, {means}"
        " from readings where machine_id = any(%(ids)s)"
        " and (%(start)s::timestamptz is null or ts >= %(start)s)"
        " and (%(end)s::timestamptz is null or ts < %(end)s)"
        " group by 1, 2 order by 1, 2"
    ).format(means=means)
    params = {"ids": list(machine_ids), "start": start, "end": end}
    with conn.cursor() as cur:
        cur.execute(query, params)
        rows = cur.fetchall()
    hourly = pd.DataFrame(rows, columns=["machine_id", "ts", "regime", *sensors])
    return finish_hourly(hourly, events_from_db(conn, machine_ids, start, end), sensors)


def events_from_db(
    conn: Connection, machine_ids: Sequence[str], start: datetime | None, end: datetime | None
) -> pd.DataFrame:
    """Failures and maintenance of the machines in ``[start, end)``."""
    rows = conn.execute(
        "select machine_id, ts, event, mode, kind from machine_events"
        " where machine_id = any(%(ids)s) and event in ('failure', 'maintenance')"
        " and (%(start)s::timestamptz is null or ts >= %(start)s)"
        " and (%(end)s::timestamptz is null or ts < %(end)s) order by ts",
        {"ids": list(machine_ids), "start": start, "end": end},
    ).fetchall()
    return events_frame(
        {"machine_id": r[0], "ts": r[1], "event": r[2], "mode": r[3], "kind": r[4]} for r in rows
    )

"""Plant history as DataFrames for the models: hourly readings, maintenance flags, failure times.

Pure functions; training, batch scoring and the online path all go through :func:`hourly_frame`,
so a model sees the same shape of data whether it learns from history or scores the live plant.
Time is a numeric column ``t_h`` (hours since the Unix epoch) so labels and features share it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from forewarn.assets import BEGINNING, Periods, bounded
from forewarn.contract import Event, Message, Telemetry

TIME_COL = "t_h"
BUCKET = "1h"
_HOUR_S = 3600.0


def to_hours(ts: pd.Series | datetime) -> Any:
    """Hours since the Unix epoch for datetimes (a Series or one value)."""
    if isinstance(ts, pd.Series):
        t = pd.to_datetime(ts, utc=True)
        return ((t - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(
            dtype=float
        ) / _HOUR_S
    return pd.Timestamp(ts).timestamp() / _HOUR_S


def readings_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Raw readings (machine_id, ts, regime, values dict) -> one column per sensor."""
    rows = list(rows)
    if not rows:
        return pd.DataFrame(columns=["machine_id", "ts", "regime"])
    base = pd.DataFrame(
        {
            "machine_id": [r["machine_id"] for r in rows],
            "ts": pd.to_datetime([r["ts"] for r in rows], utc=True),
            "regime": [r.get("regime") for r in rows],
        }
    )
    values = pd.DataFrame.from_records([r["values"] for r in rows]).astype(float)
    return pd.concat([base, values], axis=1)


def messages_frames(messages: Iterable[Message]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(readings, events) frames from in-memory contract messages (simulated history)."""
    readings: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for m in messages:
        if isinstance(m, Telemetry):
            readings.append(
                {"machine_id": m.machine, "ts": m.ts, "regime": m.regime, "values": m.values}
            )
        elif isinstance(m, Event):
            events.append(
                {
                    "machine_id": m.machine,
                    "ts": m.ts,
                    "event": m.event,
                    "mode": m.mode,
                    "kind": m.kind,
                }
            )
    return readings_frame(readings), events_frame(events)


def events_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Machine events (machine_id, ts, event, mode, kind) as a frame sorted by time."""
    df = pd.DataFrame(list(rows), columns=["machine_id", "ts", "event", "mode", "kind"])
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    return df.sort_values("ts", kind="stable").reset_index(drop=True)


def hourly_frame(
    readings: pd.DataFrame, events: pd.DataFrame, sensors: Sequence[str]
) -> pd.DataFrame:
    """Per machine and hour: sensor means, regime, ``t_h`` and a ``maintenance`` flag.

    The in-memory twin of the SQL roll-up in models/runners/history.py (a test holds them equal).
    """
    if readings.empty:
        return finish_hourly(
            pd.DataFrame(columns=["machine_id", "ts", "regime", *sensors]), events, sensors
        )
    df = readings.copy()
    for s in [*sensors, "regime"]:
        if s not in df:
            df[s] = np.nan
    df["ts"] = pd.to_datetime(df["ts"], utc=True).dt.floor(BUCKET)
    agg: dict[str, Any] = {s: "mean" for s in sensors}
    agg["regime"] = "max"
    hourly = df.groupby(["machine_id", "ts"], sort=True).agg(agg).reset_index()
    return finish_hourly(hourly, events, sensors)


def finish_hourly(
    hourly: pd.DataFrame, events: pd.DataFrame, sensors: Sequence[str]
) -> pd.DataFrame:
    """Add ``t_h`` and the ``maintenance`` flag to per-hour means (sorted by machine and hour).

    The flag marks the first hour after a maintenance (a repair after a failure included), where
    the feature windows restart. Hours without readings are absent, not filled.
    """
    cols = ["machine_id", "ts", TIME_COL, "regime", "maintenance", *sensors]
    hourly = hourly.sort_values(["machine_id", "ts"], kind="stable").reset_index(drop=True)
    hourly["ts"] = pd.to_datetime(hourly["ts"], utc=True)
    hourly[TIME_COL] = to_hours(hourly["ts"]) if len(hourly) else np.zeros(0)
    hourly["maintenance"] = _maintenance_flags(hourly, events)
    for s in [*sensors, "regime"]:
        hourly[s] = pd.to_numeric(hourly[s], errors="coerce").astype(float)
    return hourly[cols]


def _maintenance_flags(hourly: pd.DataFrame, events: pd.DataFrame) -> np.ndarray:
    flags = np.zeros(len(hourly), dtype=bool)
    if events.empty:
        return flags
    maint = events[events["event"] == "maintenance"]
    if maint.empty:
        return flags
    machines = hourly["machine_id"].to_numpy()
    t = hourly[TIME_COL].to_numpy(dtype=float)
    for machine, group in maint.groupby("machine_id"):
        rows = np.flatnonzero(machines == machine)
        if not len(rows):
            continue
        pos = np.searchsorted(t[rows], to_hours(group["ts"]), side="right")  # first hour after
        flags[rows[pos[pos < len(rows)]]] = True
    return flags


def failure_times(events: pd.DataFrame) -> dict[str, list[float]]:
    """Machine -> sorted failure times in hours (the labels' ground truth)."""
    if events.empty:
        return {}
    f = events[events["event"] == "failure"]
    return {str(m): sorted(to_hours(g["ts"]).tolist()) for m, g in f.groupby("machine_id")}


def failure_modes(events: pd.DataFrame) -> dict[str, list[tuple[float, str]]]:
    """Machine -> [(failure time in hours, mode)], sorted."""
    if events.empty:
        return {}
    f = events[events["event"] == "failure"]
    return {
        str(m): sorted(zip(to_hours(g["ts"]).tolist(), g["mode"].astype(str).tolist(), strict=True))
        for m, g in f.groupby("machine_id")
    }


def within_periods(df: pd.DataFrame, periods: Periods, ts_col: str = "ts") -> pd.DataFrame:
    """The rows of ``df`` taken while their machine had the type ``periods`` describes (rows of
    machines with no bounded period are all kept)."""
    spans = bounded(periods)
    if df.empty or not spans:
        return df
    machines = df["machine_id"].to_numpy()
    ts = pd.to_datetime(df[ts_col], utc=True)
    limited = np.isin(machines, [m for m, _, _ in spans])
    keep = ~limited
    for m, lo, hi in spans:
        inside = (machines == m) & (ts >= pd.Timestamp(lo)).to_numpy()
        if hi is not None:
            inside &= (ts < pd.Timestamp(hi)).to_numpy()
        keep |= inside
    return df[keep]


def period_starts(periods: Periods) -> dict[str, list[datetime]]:
    """Machine -> the times it took the type ``periods`` describes (after the first version)."""
    out: dict[str, list[datetime]] = {}
    for m, lo, _ in bounded(periods):
        if lo > BEGINNING:
            out.setdefault(m, []).append(lo)
    return out


def restart_flags(hourly: pd.DataFrame, starts: Mapping[str, Sequence[datetime]]) -> np.ndarray:
    """True on each machine's first hour at or after each of its ``starts``: a type taken there
    starts a new episode, as maintenance does (feature windows do not reach across it)."""
    flags = np.zeros(len(hourly), dtype=bool)
    machines = hourly["machine_id"].to_numpy()
    t = hourly[TIME_COL].to_numpy(dtype=float)
    for machine, times in starts.items():
        rows = np.flatnonzero(machines == machine)
        if not len(rows):
            continue
        hours = [to_hours(pd.Timestamp(x).floor(BUCKET)) for x in times]
        pos = np.searchsorted(t[rows], hours, side="left")
        flags[rows[pos[pos < len(rows)]]] = True
    return flags

"""Training labels: remaining useful life and failure within a horizon.

Pure functions over DataFrames; "now" is passed in so a reading whose horizon has not yet
passed stays unlabelled instead of being called healthy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

CMAPSS_RUL_CAP = 125


def rul_run_to_failure(
    df: pd.DataFrame,
    *,
    machine_col: str = "machine_id",
    time_col: str = "cycle",
    cap: float | None = CMAPSS_RUL_CAP,
) -> pd.Series:
    """RUL for run-to-failure data: the machine's last time minus the reading's, capped."""
    last = df.groupby(machine_col)[time_col].transform("max")
    rul = (last - df[time_col]).astype(float)
    return rul.clip(upper=cap) if cap is not None else rul


def rul_from_failures(
    df: pd.DataFrame,
    failures: Mapping[str, Sequence[float]],
    *,
    machine_col: str = "machine_id",
    time_col: str = "cycle",
    cap: float | None = None,
) -> pd.Series:
    """Time from each reading to the machine's next failure; NaN when none follows (censored)."""
    out = np.full(len(df), np.nan)
    machines = df[machine_col].astype(str).to_numpy()
    times = df[time_col].to_numpy(dtype=float)
    for m, fails in failures.items():
        f = np.sort(np.asarray(fails, dtype=float))
        rows = np.flatnonzero(machines == str(m))
        if not len(rows) or not len(f):
            continue
        pos = np.searchsorted(f, times[rows], side="left")
        ok = pos < len(f)
        out[rows[ok]] = f[pos[ok]] - times[rows[ok]]
    rul = pd.Series(out, index=df.index, name="rul")
    return rul.clip(upper=cap) if cap is not None else rul


def failure_within(
    df: pd.DataFrame,
    failures: Mapping[str, Sequence[float]],
    horizon: float,
    *,
    now: float,
    machine_col: str = "machine_id",
    time_col: str = "cycle",
) -> pd.Series:
    """1.0 if a failure follows within ``horizon``, 0.0 if the horizon passed without one.

    NaN (unknown) when the horizon reaches past ``now`` and no failure has arrived yet.
    """
    rul = rul_from_failures(df, failures, machine_col=machine_col, time_col=time_col)
    times = df[time_col].to_numpy(dtype=float)
    y = np.where(rul.to_numpy() <= horizon, 1.0, np.where(times + horizon <= now, 0.0, np.nan))
    return pd.Series(y, index=df.index, name="failure_within")


def label_one(t: float, next_failure: float | None, horizon: float, now: float) -> float | None:
    """Label of a single reading at ``t`` (the streaming counterpart of `failure_within`)."""
    if next_failure is not None and next_failure >= t and next_failure - t <= horizon:
        return 1.0
    if t + horizon <= now:
        return 0.0
    return None

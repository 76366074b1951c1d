"""Tables as people read them: column headings in words, times in UTC to the minute, no None/NaT.

``readable(df)`` turns a loader's frame into display values (pure, unit-tested); ``show`` draws it
with headings from ``LABELS`` and wide columns for long text, so a recommended action or a subject
is not cut to a few words.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.lineup import when

# raw column -> heading; the unit, when there is one, in brackets
LABELS: dict[str, str] = {
    "id": "#",
    "status": "Status",
    "severity": "Severity",
    "machine_id": "Machine",
    "mode": "Failure mode",
    "failure_prob": "P(failure)",
    "ttf_h": "Time to failure (h)",
    "created_at": "Raised (UTC)",
    "updated_at": "Updated (UTC)",
    "recommended_action": "Recommended action",
    "ts": "When (UTC)",
    "kind": "What",
    "label": "Detail",
    "duration_h": "Duration (h)",
    "name": "Name",
    "email": "E-mail",
    "role": "Role",
    "active": "Active",
    "last_login_at": "Last log-in (UTC)",
    "created_by": "Created by",
    "target": "Address",
    "digest_hour": "Daily digest at (UTC hour)",
    "scope": "Scope",
    "scope_id": "Machine, line or site",
    "starts_at": "Starts (UTC)",
    "ends_at": "Ends (UTC)",
    "reason": "Reason",
}
WIDE = frozenset({"recommended_action", "subject", "last_error", "reason", "label", "target"})


def readable(df: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The frame's columns (all, or ``columns``) with times as ``YYYY-MM-DD HH:MM UTC`` text,
    failure modes in words and every missing value as an en dash (never None, nan or NaT)."""
    out = (df[list(columns)] if columns is not None else df).copy()
    for c in out.columns:
        s = out[c]
        if pd.api.types.is_datetime64_any_dtype(s) or (
            s.dtype == object and s.map(lambda v: isinstance(v, datetime)).any()
        ):
            out[c] = s.map(lambda v: when(v).removesuffix(" UTC"))
        elif c == "mode":
            out[c] = s.astype(object).map(
                lambda v: "–" if _missing(v) else str(v).replace("_", " ")
            )
        elif pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            if s.isna().any() and c != "failure_prob":  # the grid would print "None"
                out[c] = s.map(lambda v: "–" if pd.isna(v) else _plain(v))
        elif not pd.api.types.is_bool_dtype(s):  # text (object or str dtype), lists, dicts
            out[c] = s.astype(object).map(lambda v: "–" if _missing(v) else v)
    return out


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v) or v is pd.NaT or v is pd.NA


def _plain(v: Any) -> Any:
    """A whole float as an int (a column that became text keeps ``3``, not ``3.0``)."""
    return int(v) if isinstance(v, float) and v.is_integer() else v


def config(columns: Sequence[str]) -> dict[str, Any]:
    """Streamlit column settings for ``columns``: headings in words, wide long-text columns,
    probabilities as bars."""
    out: dict[str, Any] = {}
    for c in columns:
        label = LABELS.get(c, c.replace("_", " ").capitalize())
        if c == "failure_prob":
            out[c] = st.column_config.ProgressColumn(label, min_value=0.0, max_value=1.0,
                                                     format="%.2f")  # fmt: skip
        elif c in ("ttf_h", "duration_h"):
            out[c] = st.column_config.NumberColumn(
                label, format="%.1f" if c == "duration_h" else "%.0f"
            )
        elif c in WIDE:
            out[c] = st.column_config.TextColumn(label, width="large", help=label)
        else:
            out[c] = st.column_config.Column(label)
    return out


def show(df: pd.DataFrame, columns: Sequence[str], *, key: str | None = None, **kw: Any) -> None:
    """Draw ``columns`` of ``df`` readably (see :func:`readable` and :func:`config`)."""
    st.dataframe(
        readable(df, columns), hide_index=True, key=key, column_config=config(columns), **kw
    )

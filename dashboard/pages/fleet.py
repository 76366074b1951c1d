"""Fleet: every machine's health and risk, filterable by site, line and type; alerts stand out."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import auth, charts, data, figures

LIVE_REFRESH_S = 30
STALE_AFTER = timedelta(minutes=15)


def _filtered(df: pd.DataFrame) -> pd.DataFrame:
    c1, c2, c3, c4 = st.columns([5, 5, 5, 4])  # wide enough for "Open alerts only" in full
    sites = c1.multiselect("Site", sorted(df["site_id"].dropna().unique()), key="fleet_sites")
    lines = c2.multiselect("Line", sorted(df["line_id"].dropna().unique()), key="fleet_lines")
    types = c3.multiselect("Type", sorted(df["type_id"].dropna().unique()), key="fleet_types")
    only_alerts = c4.checkbox("Open alerts only", key="fleet_only_alerts")
    if sites:
        df = df[df["site_id"].isin(sites)]
    if lines:
        df = df[df["line_id"].isin(lines)]
    if types:
        df = df[df["type_id"].isin(types)]
    if only_alerts:
        df = df[df["open_alerts"] > 0]
    return df


ALERT_ROW_STYLE = "background-color: rgba(214, 39, 40, 0.15)"


def _highlight(table: pd.DataFrame) -> pd.DataFrame:
    """Every cell of a machine with open alerts tinted: one vectorised pass (a row-by-row apply
    took 0.2-0.5 s for 500 machines on every rerun)."""
    alerted = (table["open alerts"] > 0).to_numpy()[:, None].repeat(table.shape[1], axis=1)
    return pd.DataFrame(
        np.where(alerted, ALERT_ROW_STYLE, ""), index=table.index, columns=table.columns
    )


@st.fragment(run_every=LIVE_REFRESH_S)
def live(url: str) -> None:
    df = data.fleet_health(url)
    if df.empty:
        st.info("No machines registered yet.")
        return
    view = _filtered(df)
    now = data.plant_now(url)
    stale = view["last_reading_at"].isna() | (view["last_reading_at"] < now - STALE_AFTER)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Machines", len(view))
    m2.metric("At risk", int((view["failure_prob"] >= figures.RISK_HIGH).sum()))
    m3.metric("Open alerts", int(view["open_alerts"].sum()))
    m4.metric("No data for 15 min", int(stale.sum()))
    left, right = st.columns([3, 2])
    left.plotly_chart(charts.figure(figures.fig_fleet_risk, view), key="fleet_risk")
    right.plotly_chart(charts.figure(figures.fig_fleet_bands, view), key="fleet_bands")
    table = pd.DataFrame(
        {
            "machine": view["machine_id"],
            "site": view["site_id"],
            "line": view["line_id"],
            "type": view["type_id"],
            "P(failure)": view["failure_prob"],
            "RUL (h)": view["rul_h"],
            "mode": view["predicted_mode"].map(lambda m: str(m).replace("_", " ") if m else ""),
            "open alerts": view["open_alerts"].astype(int),
            "severity": view["top_severity"].fillna(""),
            "last reading": view["last_reading_at"],
        }
    )
    st.dataframe(
        table.style.apply(_highlight, axis=None),
        hide_index=True,
        column_config={
            "P(failure)": st.column_config.ProgressColumn(
                "P(failure)", min_value=0.0, max_value=1.0, format="%.2f"
            ),
            "RUL (h)": st.column_config.NumberColumn("RUL (h)", format="%.0f"),
            "last reading": st.column_config.DatetimeColumn(
                "last reading", format="YYYY-MM-DD HH:mm"
            ),
        },
        key="fleet_table",
    )
    st.caption(f"Refreshes every {LIVE_REFRESH_S} s · updated {now:%H:%M:%S} UTC")


auth.require_user()
st.header("Fleet health")
url = data.db_url()
live(url)
ids = data.fleet_health(url)["machine_id"].tolist()
if ids:
    c1, c2 = st.columns([3, 1])
    chosen = c1.selectbox("Machine", ids, key="fleet_pick", label_visibility="collapsed")
    if c2.button("Open machine", key="fleet_open"):
        st.session_state["machine_id"] = chosen
        st.switch_page("pages/machine.py")

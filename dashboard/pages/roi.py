"""Downtime & ROI: downtime by machine and cause, downtime avoided and money saved."""

from __future__ import annotations

import streamlit as st

from dashboard import data, figures

WINDOWS_DAYS = {"7 days": 7.0, "30 days": 30.0, "90 days": 90.0}

st.header("Downtime & ROI")
url = data.db_url()
span = (
    st.segmented_control("Window", list(WINDOWS_DAYS), default="7 days", key="roi_window")
    or "7 days"
)
since, until = data.window(WINDOWS_DAYS[span])
d = data.downtime(url, since, until)
s = d["summary"]
by_machine = d["by_machine"]
failures = by_machine[by_machine["event"] == "failure"] if not by_machine.empty else by_machine
c1, c2, c3, c4, c5 = st.columns(5)
c1.metric("Downtime (h)", f"{by_machine['downtime_h'].sum():,.1f}" if not by_machine.empty else "0")
c2.metric("Failures", int(s["failures"]))
c3.metric("Failure cost", f"{float(s['failure_cost']):,.0f}")
c4.metric("Alerts resolved / dismissed", f"{int(s['resolved'])} / {int(s['dismissed'])}")
c5.metric("Estimated savings", f"{float(s['estimated_savings']):,.0f}")
left, right = st.columns(2)
left.plotly_chart(figures.fig_downtime(by_machine), key="roi_downtime")
right.plotly_chart(figures.fig_downtime_daily(d["daily"]), key="roi_daily")
st.caption(
    "Estimated savings: every resolved alert is credited with an avoided unplanned failure minus "
    "the planned work, every dismissed alert costs an inspection (machine-type costs)."
)

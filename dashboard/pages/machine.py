"""Machine: sensor trends with failure-probability and RUL bands, events, alerts and the explanation."""

from __future__ import annotations

import streamlit as st

from dashboard import auth, charts, data, figures, tables
from models.calibration import fmt_prob

LIVE_REFRESH_S = 60

auth.require_user()
st.header("Machine detail")
url = data.db_url()
fleet = data.fleet_health(url)
if fleet.empty:
    st.info("No machines registered yet.")
    st.stop()
ids = fleet["machine_id"].tolist()  # riskiest first
wanted = st.session_state.get("machine_id")
c1, c2 = st.columns([1, 1])  # the window control needs its five labels in full
machine_id = c1.selectbox(
    "Machine", ids, index=ids.index(wanted) if wanted in ids else 0, key="machine_pick"
)
st.session_state["machine_id"] = machine_id
span, days = data.window_picker(c2, "machine_window")


@st.fragment(run_every=LIVE_REFRESH_S)
def live(url: str, machine_id: str, days: float) -> None:
    since, until = data.window(days, data.plant_now(url))
    d = data.machine_detail(url, machine_id, since, until)
    info = d.info or {}
    latest = d.latest or {}
    st.subheader(f"{machine_id} · {info.get('type_name', '?')} · {info.get('site_name', '?')}")
    m1, m2, m3, m4 = st.columns(4)
    prob = latest.get("failure_prob")
    m1.metric("P(failure)", fmt_prob(prob), help="within the horizon")
    rul, lo, hi = latest.get("rul_h"), latest.get("rul_low_h"), latest.get("rul_high_h")
    m2.metric(
        "RUL (h)",
        "–" if rul is None else f"{rul:.0f}",
        help=None if lo is None or hi is None else f"interval {lo:.0f}–{hi:.0f} h",
    )
    active = d.alerts[d.alerts["status"].isin(data.ACTIVE)] if not d.alerts.empty else d.alerts
    m3.metric("Open alerts", len(active))
    mode = latest.get("mode")
    m4.metric("Predicted mode", str(mode).replace("_", " ") if mode else "–")
    units = {s["name"]: s["unit"] for s in info.get("sensors") or []}
    fig = charts.figure(
        figures.fig_sensor_trends,
        d.rollup,
        d.predictions,
        d.timeline,
        sensors=list(units) or None,
        units=units,
    )
    st.plotly_chart(fig, key="machine_trends")
    left, right = st.columns(2)
    left.plotly_chart(
        charts.figure(figures.fig_contributions, latest.get("contributions"), units=units),
        key="machine_contributions",
    )
    with right:
        st.markdown("**Failures, maintenance and alerts**")
        if d.timeline.empty:
            st.caption("Nothing in this window.")
        else:
            timeline = d.timeline.sort_values("ts", ascending=False)
            tables.show(timeline, [c for c in timeline.columns if c in tables.LABELS])
    orders = data.machine_orders(url, machine_id)
    if orders:
        st.markdown("**Maintenance orders** (plant time)")
        for o in orders:
            st.markdown(f"- {data.order_line(o)}")
    st.markdown("**Alert history**")
    if d.alerts.empty:
        st.caption("No alerts for this machine.")
    else:
        cols = ["id", "status", "severity", "recommended_action", "failure_prob", "ttf_h", "mode",
                "created_at"]  # fmt: skip
        tables.show(d.alerts, cols)


live(url, machine_id, days)

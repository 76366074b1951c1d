"""Models: registered versions and their metrics, champion vs challenger, promotions, drift events."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import auth, data, figures

METRIC_ORDER = ("roc_auc", "pr_auc", "f1", "brier", "rmse", "rul_rmse_h", "nasa_score")


auth.require_user()
st.header("Model monitoring")
url = data.db_url()
_, days = data.window_picker(st, "models_window")
since, until = data.window(days, data.plant_now(url))
m = data.models(url, since, until)
versions: pd.DataFrame = m["versions"]
if versions.empty:
    st.info("No model versions registered yet: train one with `forewarn train`.")
else:
    table = figures.metrics_table(versions)
    shown = [c for c in METRIC_ORDER if c in table.columns]
    st.subheader("Versions")
    st.dataframe(
        versions[
            ["name", "version", "aliases", "created_at", "train_from", "train_to", "code_revision"]
        ],
        hide_index=True,
        key="models_versions",
    )
    left, right = st.columns(2)
    # probabilities share a 0-1 scale; error metrics in hours are charted on their own
    scores = [c for c in shown if c in ("roc_auc", "pr_auc", "f1", "brier")]
    left.plotly_chart(figures.fig_model_metrics(table, scores or None), key="models_metrics")
    right.plotly_chart(figures.fig_role_comparison(m["roles"]), key="models_roles")
    champ = table[table["aliases"].str.contains("champion")]
    chall = table[table["aliases"].str.contains("challenger")]
    if not champ.empty and not chall.empty:
        st.subheader("Champion vs challenger")
        cols = st.columns(max(1, len(shown)))
        for col, metric in zip(cols, shown, strict=False):
            a, b = champ.iloc[0].get(metric), chall.iloc[0].get(metric)
            if pd.notna(a) and pd.notna(b):
                col.metric(metric, f"{b:.3f}", f"{b - a:+.3f} vs champion", delta_color="off")
st.subheader("Calibration of live predictions")
cal = m["calibration"]
c1, c2, c3 = st.columns(3)
c1.metric("Labelled predictions", f"{cal['n']:,}", help=str(cal.get("labelled_on")))
c2.metric("Brier score", "–" if cal["brier"] is None else f"{cal['brier']:.3f}")
c3.metric("Expected calibration error", "–" if cal["ece"] is None else f"{cal['ece']:.3f}")
st.plotly_chart(figures.fig_reliability(cal), key="models_reliability")
st.caption(
    f"Champion predictions whose {cal['horizon_h']:.0f} h horizon has passed, against whether the"
    " machine failed within it. Points on the diagonal mean a predicted 30 % fails 30 % of the time."
)
st.subheader("Promotions and rollbacks")
history: pd.DataFrame = m["history"]
if history.empty:
    st.caption("None yet.")
else:
    st.dataframe(history, hide_index=True, key="models_history")
st.subheader("Drift")
st.plotly_chart(figures.fig_drift(m["drift"]), key="models_drift")

"""Models: champion, challenger and online model side by side per machine type, predictions per role,
live calibration, promotions, and drift on the plant clock."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import auth, data, figures
from dashboard.lineup import (
    METRICS,
    calibration_lines,
    lineup,
    metric_lines,
    no_challenger,
    when,
)

STATUS = {
    "champion": "Serving: its scores raise the alerts.",
    "challenger": "Shadowing: scored beside the champion; promoted only if it scores better.",
    "online": "Learning from the stream: its scores are stored, it raises no alerts.",
}


def _lines(box: Any, lines: list[tuple[str, str]]) -> None:
    box.markdown("\n".join(f"- {label}: **{value}**" for label, value in lines))


def _version(box: Any, role: str, v: dict[str, Any], cal: dict[str, Any] | None) -> None:
    box.markdown(f"**{role.capitalize()}** · {v['name']} v{v['version']}")
    box.caption(STATUS[role])
    _lines(
        box,
        [
            ("Trained on plant data", f"{when(v.get('train_from'))} – {when(v.get('train_to'))}"),
            ("Registered (wall clock)", when(v.get("created_at"))),
        ],
    )
    held_out = metric_lines(v.get("metrics"))
    box.markdown("Held-out machines (out of sample):")
    _lines(box, held_out or [("Metrics", "none recorded")])
    _lines(box, calibration_lines(cal))


def _online(box: Any, o: dict[str, Any], cal: dict[str, Any] | None) -> None:
    parts = f" ({o['partitions']} partitions)" if o["partitions"] > 1 else ""
    box.markdown(f"**Online** · {o['label']}{parts}")
    box.caption(STATUS["online"])
    lines = [
        ("Learned up to (plant time)", when(o["learned_to"])),
        ("Readings scored", f"{o['scored']:,}"),
        ("Labelled and learned", f"{o['learned']:,}"),
        ("Awaiting their label", f"{o['pending']:,}"),
    ]
    if o["roc_auc"] is not None:
        lines.append(("ROC-AUC, each prediction before learning", f"{o['roc_auc']:.3f}"))
    if o["log_loss"] is not None:
        lines.append(("Log loss, the same way", f"{o['log_loss']:.3f}"))
    lines.append(("Drift detections", f"{o['drift_events']:,}"))
    _lines(box, lines)
    _lines(box, calibration_lines(cal))


auth.require_user()
st.header("Model monitoring")
url = data.db_url()
_, days = data.window_picker(st, "models_window")
plant_now = data.plant_now(url)
since, until = data.window(days, plant_now)
m = data.models(url, since, until)
versions: pd.DataFrame = m["versions"]
types: dict[str, dict[str, Any]] = m["types"]
calibration: dict[str, dict[str, Any]] = m["calibration"]

st.subheader("Champion, challenger and online model")
families = lineup(versions, m["online"])
if not families:
    st.info("No model registered yet: train one with `forewarn train` (the demo trains its first).")
for fam, slots in families.items():
    st.markdown(f"#### {(types.get(fam) or {}).get('name') or fam}")
    cols = st.columns(3, border=True)
    for col, role in zip(cols, ("champion", "challenger", "online"), strict=True):
        slot = slots[role]
        cal = (calibration.get(role) or {}).get("by_type", {}).get(fam)
        if role == "online":
            if slot is None:
                col.markdown("**Online**")
                col.info(
                    "No online model yet: `forewarn score --loop` starts one per machine type."
                )
            else:
                _online(col, slot, cal)
        elif slot is not None:
            _version(col, role, slot, cal)
        elif role == "challenger":
            col.markdown("**Challenger**")
            col.info(
                no_challenger(
                    slots["champion"], retrain_every_h=m["retrain_every_h"], now=plant_now
                )
            )
        else:
            col.markdown("**Champion**")
            col.info("No champion yet: `forewarn train` registers the first version as champion.")

st.subheader("Predictions per role")
st.plotly_chart(figures.fig_role_comparison(m["roles"]), key="models_roles")

st.subheader("Calibration of the champion's live predictions")
cal = calibration["champion"]
c1, c2, c3 = st.columns(3)
c1.metric("Labelled predictions", f"{cal['n']:,}", help=str(cal.get("labelled_on")))
c2.metric("Brier score", "–" if cal["brier"] is None else f"{cal['brier']:.3f}")
c3.metric("Expected calibration error", "–" if cal["ece"] is None else f"{cal['ece']:.3f}")
st.plotly_chart(figures.fig_reliability(cal), key="models_reliability")
st.caption(
    f"Champion predictions whose {cal['horizon_h']:.0f} h horizon has passed, against whether the"
    " machine failed within it. Points on the diagonal mean a predicted 30 % fails 30 % of the time."
)

st.subheader("Drift")
st.plotly_chart(
    figures.fig_drift(m["drift"], window=(since, until), types=types), key="models_drift"
)
st.caption(
    f"Plant time: each detection is placed at the newest reading its detector had seen; the plant's"
    f" clock reads {when(plant_now)}."
)

st.subheader("Versions")
if versions.empty:
    st.caption("No versions registered yet.")
else:
    table = versions.assign(
        aliases=versions["aliases"].map(lambda a: ", ".join(a) if len(a) else "–"),
        trained_to=versions["train_to"].map(when),
        registered=versions["created_at"].map(when),
        code_revision=versions["code_revision"].fillna("–"),
    )
    st.dataframe(
        table[["name", "version", "aliases", "trained_to", "registered", "code_revision"]],
        hide_index=True,
        key="models_versions",
        column_config={
            "name": "Model",
            "version": "Version",
            "aliases": "Alias",
            "trained_to": "Trained on data up to (plant)",
            "registered": "Registered (wall clock)",
            "code_revision": "Code revision",
        },
    )
    scores = figures.metrics_table(versions)
    shown = [c for c in ("roc_auc", "pr_auc", "brier", "ece") if c in scores.columns]
    st.plotly_chart(
        figures.fig_model_metrics(scores, shown or None, {k: METRICS[k][0] for k in METRICS}),
        key="models_metrics",
    )

st.subheader("Promotions and rollbacks")
history: pd.DataFrame = m["history"]
if history.empty:
    st.caption("No promotion or rollback yet.")
else:
    st.dataframe(
        history.assign(
            at=history["at"].map(when),
            previous_version=history["previous_version"].map(
                lambda v: "–" if pd.isna(v) else f"v{int(v)}"
            ),
        ),
        hide_index=True,
        key="models_history",
        column_config={
            "at": "When",
            "name": "Model",
            "alias": "Alias",
            "version": "Version",
            "previous_version": "Before",
            "actor": "By",
        },
    )

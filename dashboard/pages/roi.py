"""Downtime & ROI: downtime by machine and cause, the live savings ledger, the latest backtest, what-if."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import auth, charts, data, figures
from forewarn.money import fmt_money

COST_FIELDS = (  # models.roi / forewarn.assets.Costs fields a what-if may change
    ("downtime_cost_per_h", "Downtime cost per hour"),
    ("repair_cost", "Repair cost (unplanned)"),
    ("planned_maintenance_cost", "Planned maintenance cost"),
    ("inspection_cost", "Inspection cost"),
    ("repair_hours", "Repair hours"),
    ("planned_hours", "Planned job hours"),
)
POLICY_COLUMNS = ["policy", "cost", "downtime_h", "failures", "caught", "missed", "false_alarms"]


CURRENCY = "EUR"  # replaced by the plant's currency once the page has loaded its data


def _money(v: Any) -> str:
    return fmt_money(None if v is None else float(v), CURRENCY)


def _saving(f: dict[str, Any], key: str) -> tuple[str, str]:
    """(value, help) of one saving with its bootstrap interval."""
    lo, hi = f.get(f"ci_low_vs_{key}"), f.get(f"ci_high_vs_{key}")
    pct = f.get(f"savings_pct_vs_{key}")
    value = _money(f.get(f"savings_vs_{key}")) + ("" if pct is None else f" ({pct:+.0f} %)")
    ci = "" if lo is None else f"95 % interval over machines: {_money(lo)} … {_money(hi)}"
    return value, ci


def out_of_sample_section(result: dict[str, Any]) -> None:
    """The honest figures: tuned on earlier windows, scored on later ones, with intervals."""
    oos, ins = result.get("out_of_sample"), result.get("in_sample")
    if not oos:
        st.warning(
            "This backtest predates out-of-sample scoring: its figures are in sample (tuned and"
            " scored on the same history). Run `forewarn backtest` again."
        )
        return
    c1, c2 = st.columns(2)
    for col, key, label in (
        (c1, "run_to_failure", "run-to-failure"),
        (c2, "fixed_interval", "fixed-interval"),
    ):
        value, ci = _saving(oos, key)
        col.metric(f"Saved vs {label} (out of sample)", value, help=ci)
        col.caption(ci)
    if ins:
        st.caption(
            "In sample (tuned and scored on the same lives, optimistic): saved vs run-to-failure "
            f"{_saving(ins, 'run_to_failure')[0]}, vs fixed-interval "
            f"{_saving(ins, 'fixed_interval')[0]}. " + str(result.get("method", ""))
        )


def policy_section(live: dict[str, Any] | None) -> None:
    """The alert policy the engine runs now."""
    st.subheader("Live alert policy")
    if live is None:
        st.caption(
            "No policy version promoted: the alert engine uses the settings' thresholds."
            " `forewarn backtest` proposes one; `forewarn policy promote VERSION` makes it live."
        )
        return
    st.caption(
        f"Version {live['version']} ({live['source']}), promoted {live['promoted_at']:%Y-%m-%d %H:%M}"
        f" UTC by {live['promoted_by']}."
    )
    pol = live["policy"]
    rows = [{"machine type": t, **p} for t, p in sorted((pol.get("types") or {}).items())]
    rows.append({"machine type": "(other types)", **pol["default"]})
    st.dataframe(pd.DataFrame(rows), hide_index=True)


def backtest_section(result: dict[str, Any], key: str) -> None:
    """In-sample savings against both baselines, the chosen thresholds and each policy's cost."""
    c1, c2, c3 = st.columns(3)
    c1.metric(
        "Saved vs run-to-failure (in sample)", _money(result.get("savings_vs_run_to_failure"))
    )
    c2.metric(
        "Saved vs fixed-interval (in sample)", _money(result.get("savings_vs_fixed_interval"))
    )
    by_type = result.get("thresholds_by_type") or {}
    # one line per type: a metric would cut the list after the first type or two
    c3.markdown(
        "**Alert thresholds by type**\n\n"
        + (
            "\n".join(
                f"- {t}: **{'never' if v is None else f'{v:.2f}'}**"
                for t, v in sorted(by_type.items())
            )
            or "–"
        )
    )
    policies = figures.policy_frame(result)
    left, right = st.columns([2, 3])
    left.plotly_chart(
        charts.figure(figures.fig_policy_costs, policies, CURRENCY), key=f"{key}_costs"
    )
    with right:
        shown = [c for c in POLICY_COLUMNS if c in policies.columns]
        st.dataframe(
            policies[shown],
            hide_index=True,
            column_config={
                "cost": st.column_config.NumberColumn(f"cost ({CURRENCY})", format="%.0f"),
                "downtime_h": st.column_config.NumberColumn("downtime (h)", format="%.1f"),
            },
        )


def what_if(url: str, backtest: dict[str, Any]) -> None:
    costs: dict[str, dict[str, float]] = backtest.get("costs") or {}
    if not costs:
        return
    st.subheader("What if the costs were different?")
    with st.form("what_if"):
        type_id = st.selectbox("Machine type", sorted(costs), key="whatif_type")
        current = costs[type_id]
        cols = st.columns(3)
        values = {
            field: cols[i % 3].number_input(
                label, min_value=0.0, value=float(current.get(field, 0.0)), key=f"whatif_{field}"
            )
            for i, (field, label) in enumerate(COST_FIELDS)
        }
        submitted = st.form_submit_button("Recompute")
    if submitted:
        overrides = tuple(
            (type_id, f, float(v))
            for f, v in values.items()
            if float(v) != float(current.get(f, 0.0))
        )
        result = data.what_if(url, int(backtest["id"]), overrides)
        if result is None:
            st.warning("The backtest is gone; run `forewarn backtest` again.")
            return
        st.caption(f"Recomputed for {type_id} with {len(overrides)} changed cost(s).")
        backtest_section(result, "whatif")


auth.require_user()
st.header("Downtime & ROI")
url = data.db_url()
span, days = data.window_picker(st, "roi_window")
since, until = data.window(days, data.plant_now(url))
d = data.downtime(url, since, until)
CURRENCY = str(d.get("currency") or CURRENCY)
s = d["summary"]
by_machine: pd.DataFrame = d["by_machine"]
totals = d["ledger"]["totals"]
c1, c2, c3, c4 = st.columns(4)
c1.metric("Downtime (h)", f"{by_machine['downtime_h'].sum():,.1f}" if not by_machine.empty else "0")
c2.metric("Failures", int(s["failures"]))
c3.metric("Failure cost", _money(s["failure_cost"]))
c4.metric("Maintenance jobs", int(s["maintenance"]))
c1, c2, c3, c4 = st.columns(4)
c1.metric("Downtime avoided (h)", f"{totals['downtime_avoided_h']:,.1f}")
c2.metric("Failures avoided", int(totals["avoided_failures"]))
c3.metric(
    "False alarms", int(totals["false_alarms"]), help=f"cost {_money(totals['false_alarm_cost'])}"
)
c4.metric("Net savings", _money(totals["net_savings"]))
left, right = st.columns(2)
left.plotly_chart(charts.figure(figures.fig_downtime, by_machine), key="roi_downtime")
right.plotly_chart(charts.figure(figures.fig_downtime_daily, d["daily"]), key="roi_daily")
st.plotly_chart(
    charts.figure(figures.fig_savings, figures.ledger_frame(d["ledger"]["entries"]), CURRENCY),
    key="roi_savings",
)
st.caption(
    "Live ledger: a resolved alert with a confirmed fault and no failure within a day after it is "
    "credited with the failure it avoided (repair, downtime) minus the planned work; a dismissed "
    "or unconfirmed alert costs an inspection."
)
st.subheader("Backtest: predictive vs run-to-failure vs fixed-interval")
backtest = d["backtest"]
running = data.backtest_progress()
if running is not None and running["done"] < running["total"]:
    st.progress(
        running["done"] / max(1, running["total"]),
        text=f"A backtest on simulated history is running in the background: {running['stage']}",
    )
if backtest is None:
    st.info(
        "No backtest stored yet. The demo runs one on simulated history in the background (a few"
        " minutes); elsewhere run `forewarn backtest` to compare the maintenance policies."
    )
else:
    st.caption(
        f"Backtest #{backtest['id']} ({backtest['source']}) over "
        f"{backtest['window_from']:%Y-%m-%d} – {backtest['window_to']:%Y-%m-%d}, "
        f"stored {backtest['created_at']:%Y-%m-%d %H:%M} UTC"
    )
    out_of_sample_section(backtest["result"])
    backtest_section(backtest["result"], "backtest")
    what_if(url, backtest)
policy_section(d.get("policy"))

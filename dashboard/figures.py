"""Plotly figures for the dashboard: pure functions of DataFrames (no Streamlit, no database).

Each takes the frame a query in ``dashboard.data`` returns and gives back a ``go.Figure``; an empty
frame gives an empty figure with a note, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from forewarn.names import human_name, sensor_name

RISK_HIGH = 0.6  # failure probability above which a machine is shown as at risk
RISK_MEDIUM = 0.3
COLORS = {"high": "#d62728", "medium": "#ff7f0e", "low": "#2ca02c", "unknown": "#7f7f7f"}
EVENT_COLORS = {"failure": "#d62728", "maintenance": "#2ca02c", "alert": "#ff7f0e"}
EVENT_SYMBOLS = {"failure": "x", "maintenance": "triangle-up", "alert": "diamond"}
# One colour per downtime cause (failure modes of the shipped factory, maintenance kinds), the
# same on every refresh and every page; a cause not listed gets a colour from its name's hash.
CAUSE_COLORS = {
    "tool_wear": "#8c564b",
    "heat": "#d62728",
    "power": "#9467bd",
    "overstrain": "#e377c2",
    "random": "#7f7f7f",
    "bearing": "#bcbd22",
    "degradation": "#17becf",
    "repair": "#ff7f0e",
    "preventive": "#2ca02c",
    "inspection": "#1f77b4",
}
_PALETTE = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#31a354", "#756bb1")


def cause_color(cause: str) -> str:
    """The stable colour of a downtime cause."""
    import zlib

    return CAUSE_COLORS.get(cause) or _PALETTE[zlib.crc32(cause.encode()) % len(_PALETTE)]


LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "template": "plotly_white"}


def risk_band(prob: float | None) -> str:
    """'high', 'medium', 'low' or 'unknown' for a failure probability."""
    if prob is None or pd.isna(prob):
        return "unknown"
    return "high" if prob >= RISK_HIGH else "medium" if prob >= RISK_MEDIUM else "low"


def _empty(title: str, note: str = "no data yet") -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, **LAYOUT)
    fig.add_annotation(text=note, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


LOG_TICKS_H = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def with_gaps(df: pd.DataFrame, col: str = "bucket", factor: float = 1.5) -> pd.DataFrame:
    """``df`` sorted by ``col`` with an empty row inside every gap longer than ``factor`` times the
    usual step, so Plotly breaks the line there (downtime shows as a gap, not a straight line)."""
    if len(df) < 3:
        return df.sort_values(col) if col in df else df
    d = df.sort_values(col).reset_index(drop=True)
    steps = d[col].diff()
    usual = steps.median()
    gaps = d.index[steps > usual * factor]
    if len(gaps) == 0:
        return d
    fillers = pd.DataFrame({col: d.loc[gaps, col] - usual})
    return pd.concat([d, fillers], ignore_index=True).sort_values(col, kind="stable")


def band(x: pd.Series, upper: pd.Series, lower: pd.Series) -> tuple[list[Any], list[Any]]:
    """A filled band as closed outlines, one per run of rows where both edges are known, joined
    by None: Plotly fills each piece of a ``fill="toself"`` trace on its own, where a pair of
    ``tonexty`` traces fills straight across a gap (downtime drawn as a slanted wedge)."""
    xs: list[Any] = []
    ys: list[Any] = []
    known = (upper.notna() & lower.notna()).to_numpy()
    xv, uv, lv = list(x), list(upper), list(lower)
    i = 0
    while i < len(known):
        if not known[i]:
            i += 1
            continue
        j = i
        while j < len(known) and known[j]:
            j += 1
        if xs:
            xs.append(None)
            ys.append(None)
        xs += xv[i:j] + xv[i:j][::-1]
        ys += uv[i:j] + lv[i:j][::-1]
        i = j
    return xs, ys


def _band_trace(
    x: pd.Series, upper: pd.Series, lower: pd.Series, color: str, **kw: Any
) -> go.Scatter:
    bx, by = band(x, upper, lower)
    return go.Scatter(x=bx, y=by, mode="lines", line={"width": 0}, fill="toself",
                      fillcolor=color, hoverinfo="skip", **kw)  # fmt: skip


def fig_fleet_risk(df: pd.DataFrame) -> go.Figure:
    """Every machine as a point: remaining useful life (x, log) against failure probability (y).

    Colour is the risk band; machines with open alerts get a black outline and a larger marker.
    Columns: machine_id, failure_prob, rul_h, open_alerts, type_id.
    """
    title = "Fleet risk: failure probability vs remaining useful life"
    data = df.dropna(subset=["failure_prob"]) if not df.empty else df
    if data.empty:
        return _empty(title, "no predictions yet")
    fig = go.Figure()
    bands = data["failure_prob"].map(risk_band)
    alerted = data["open_alerts"].fillna(0) > 0
    for band in ("high", "medium", "low"):
        part = data[bands == band]
        if part.empty:
            continue
        flagged = alerted[bands == band]
        fig.add_trace(
            go.Scatter(
                x=part["rul_h"].clip(lower=0.5),
                y=part["failure_prob"],
                mode="markers",
                name=f"{band} risk",
                text=part["machine_id"],
                customdata=part[["type_id", "open_alerts"]].to_numpy(),
                hovertemplate="%{text} (%{customdata[0]})<br>P(failure)=%{y:.2f}"
                "<br>RUL=%{x:.0f} h<br>open alerts=%{customdata[1]}<extra></extra>",
                marker={
                    "color": COLORS[band],
                    "size": [14 if f else 8 for f in flagged],
                    "line": {"color": ["black" if f else "white" for f in flagged], "width": 1.5},
                },
            )
        )
    fig.add_hline(y=RISK_HIGH, line_dash="dash", line_color=COLORS["high"], opacity=0.5)
    # log axis labelled at 1-2-5 steps with units (Plotly's default minor labels read "2 5 10 2 5")
    fig.update_xaxes(
        type="log",
        title="remaining useful life (h, log scale)",
        tickvals=LOG_TICKS_H,
        ticktext=[f"{t:g} h" for t in LOG_TICKS_H],
        minor={"showgrid": False},
    )
    # a little room above 1 so markers at P = 1 are drawn whole, not cut in half
    fig.update_yaxes(range=[-0.04, 1.06], tickvals=[0, 0.2, 0.4, 0.6, 0.8, 1.0],
                     title="P(failure within horizon)")  # fmt: skip
    fig.update_traces(cliponaxis=False)
    fig.update_layout(title=title, legend={"orientation": "h", "y": -0.15}, **LAYOUT)
    return fig


def fig_fleet_bands(df: pd.DataFrame) -> go.Figure:
    """Machines per site in each risk band (stacked bars). Columns: site_id, failure_prob."""
    title = "Machines per risk band"
    if df.empty:
        return _empty(title)
    counts = (
        df.assign(band=df["failure_prob"].map(risk_band))
        .groupby(["site_id", "band"])
        .size()
        .unstack(fill_value=0)
    )
    fig = go.Figure()
    for band in ("high", "medium", "low", "unknown"):
        if band in counts.columns:
            fig.add_trace(
                go.Bar(x=counts.index, y=counts[band], name=band, marker_color=COLORS[band])
            )
    fig.update_layout(barmode="stack", title=title, yaxis_title="machines", **LAYOUT)
    return fig


def _add_events(fig: go.Figure, events: pd.DataFrame) -> None:
    """Vertical lines for failures, maintenance and alerts across every subplot row."""
    if events.empty:
        return
    for kind, part in events.groupby("kind"):
        color = EVENT_COLORS.get(str(kind), "#7f7f7f")
        for ts in part["ts"]:
            fig.add_vline(x=ts, line_color=color, line_dash="dot", opacity=0.7)
        # one marker trace per kind on the first row, so the legend and hover name the events
        fig.add_trace(
            go.Scatter(
                x=part["ts"],
                y=[1.02] * len(part),
                mode="markers",
                name=str(kind),
                text=part["label"],
                hovertemplate="%{x}<br>" + str(kind) + ": %{text}<extra></extra>",
                marker={
                    "symbol": EVENT_SYMBOLS.get(str(kind), "circle"),
                    "size": 11,
                    "color": color,
                },
            ),
            row=1,
            col=1,
        )


def fig_sensor_trends(
    rollup: pd.DataFrame,
    predictions: pd.DataFrame,
    events: pd.DataFrame | None = None,
    *,
    sensors: Sequence[str] | None = None,
    units: Mapping[str, str] | None = None,
) -> go.Figure:
    """Failure probability and RUL bands, then one row per sensor (mean with a min-max band).

    ``rollup``: bucket, sensor, mean, min, max. ``predictions``: bucket, failure_prob,
    failure_prob_max, rul_h, rul_low_h, rul_high_h. ``events``: ts, kind, label.
    """
    title = "Sensor trends, failure probability and RUL"
    if rollup.empty and predictions.empty:
        return _empty(title, "no readings or predictions in this window")
    names = (
        list(sensors)
        if sensors is not None
        else sorted(rollup["sensor"].unique())
        if not rollup.empty
        else []
    )
    units = units or {}
    rows = 2 + len(names)
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.02,
        subplot_titles=["P(failure)", "RUL (h)"] + [sensor_name(n, units.get(n)) for n in names],
    )
    if not predictions.empty:
        p = with_gaps(predictions)
        upper = p["failure_prob_max"] if "failure_prob_max" in p else p["failure_prob"]
        fig.add_trace(
            _band_trace(p["bucket"], upper, p["failure_prob"], "rgba(214,39,40,0.2)",
                        showlegend=False),
            row=1,
            col=1,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=p["bucket"],
                y=p["failure_prob"],
                mode="lines",
                name="P(failure)",
                line={"color": COLORS["high"]},
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            _band_trace(p["bucket"], p["rul_high_h"], p["rul_low_h"], "rgba(31,119,180,0.2)",
                        name="RUL interval"),
            row=2,
            col=1,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=p["bucket"], y=p["rul_h"], mode="lines", name="RUL", line={"color": "#1f77b4"}
            ),
            row=2,
            col=1,
        )
        fig.update_yaxes(range=[0, 1.08], row=1, col=1)
    for i, name in enumerate(names, start=3):
        s = with_gaps(rollup[rollup["sensor"] == name])
        fig.add_trace(
            _band_trace(s["bucket"], s["max"], s["min"], "rgba(127,127,127,0.2)", showlegend=False),
            row=i,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=s["bucket"],
                y=s["mean"],
                mode="lines",
                name=name,
                showlegend=False,
                line={"color": "#444"},
            ),
            row=i,
            col=1,
        )
    if events is not None:
        _add_events(fig, events)
    fig.update_layout(title=title, height=180 * rows + 80, hovermode="x unified", **LAYOUT)
    return fig


Contributions = Mapping[str, float] | Sequence[Mapping[str, Any]]


def as_contribution_map(contributions: Contributions | None) -> dict[str, float]:
    """Feature -> contribution from either stored form: an object, or the scorer's ordered
    list of ``{"feature": ..., "value": ...}``."""
    if not contributions:
        return {}
    if isinstance(contributions, Mapping):
        return {str(k): float(v) for k, v in contributions.items()}
    return {str(c["feature"]): float(c["value"]) for c in contributions}


def fig_contributions(
    contributions: Contributions | None, *, top: int = 10, units: Mapping[str, str] | None = None
) -> go.Figure:
    """Horizontal bars of the largest feature contributions (by magnitude) of one prediction."""
    title = "Why: top feature contributions of the latest prediction"
    as_map = as_contribution_map(contributions)
    if not as_map:
        return _empty(title, "no explanation recorded")
    items = sorted(as_map.items(), key=lambda kv: abs(kv[1]), reverse=True)[:top]
    items.reverse()  # largest at the top of a horizontal bar chart
    values = [float(v) for _, v in items]
    fig = go.Figure(
        go.Bar(
            x=values,
            y=[human_name(k, units) for k, _ in items],
            orientation="h",
            marker_color=[COLORS["high"] if v > 0 else "#1f77b4" for v in values],
            hovertemplate="%{y}: %{x:+.2f} log-odds<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title="contribution to the log-odds of failure (SHAP)",
        **LAYOUT,
    )
    fig.update_yaxes(automargin=True)  # long human names are shown whole
    return fig


def fig_downtime(df: pd.DataFrame, *, top: int = 25) -> go.Figure:
    """Downtime hours of the ``top`` machines, stacked by cause. Columns: machine_id, cause, downtime_h."""
    title = "Downtime by machine and cause"
    if df.empty:
        return _empty(title, "no downtime recorded in this window")
    per_machine = df.groupby("machine_id")["downtime_h"].sum().nlargest(top)
    data = df[df["machine_id"].isin(per_machine.index)]
    pivot = data.pivot_table(
        index="machine_id", columns="cause", values="downtime_h", aggfunc="sum", fill_value=0
    )
    pivot = pivot.loc[per_machine.index[::-1]]
    fig = go.Figure()
    for cause in sorted(pivot.columns):
        fig.add_trace(
            go.Bar(
                y=pivot.index,
                x=pivot[cause],
                name=str(cause).replace("_", " "),
                orientation="h",
                marker_color=cause_color(str(cause)),
            )
        )
    fig.update_layout(
        barmode="stack",
        title=title,
        xaxis_title="hours",
        height=max(300, 22 * len(pivot) + 120),
        **LAYOUT,
    )
    return fig


def fig_downtime_daily(df: pd.DataFrame) -> go.Figure:
    """Downtime hours per day, failures vs maintenance. Columns: day, event, downtime_h."""
    title = "Downtime per day"
    if df.empty:
        return _empty(title, "no downtime recorded in this window")
    fig = go.Figure()
    for event, part in df.groupby("event"):
        fig.add_trace(
            go.Bar(
                x=part["day"],
                y=part["downtime_h"],
                name=str(event),
                marker_color=EVENT_COLORS.get(str(event)),
            )
        )
    fig.update_layout(barmode="stack", title=title, yaxis_title="hours", **LAYOUT)
    return fig


SERIES_COLORS = {"net savings": "#2ca02c", "failure cost avoided": "#1f77b4"}


def fig_savings(df: pd.DataFrame, currency: str = "EUR") -> go.Figure:
    """Cumulative savings from the live ledger, filled to zero, one series per kind of figure.

    Columns: ts, series, savings (per entry).
    """
    title = f"Cumulative savings from the live ledger ({currency})"
    if df.empty:
        return _empty(title, "no resolved or dismissed alerts in this window")
    fig = go.Figure()
    for series, part in df.sort_values("ts").groupby("series", sort=True):
        color = SERIES_COLORS.get(str(series), "#7f7f7f")
        fig.add_trace(
            go.Scatter(
                x=part["ts"],
                y=part["savings"].cumsum(),
                mode="lines",
                name=str(series),
                line={"shape": "hv", "color": color},
                fill="tozeroy",
                hovertemplate=f"%{{x}}<br>%{{y:,.0f}} {currency}<extra>%{{fullData.name}}</extra>",
            )
        )
    fig.add_hline(y=0, line_color="#7f7f7f", opacity=0.5)
    fig.update_layout(
        title=title,
        yaxis_title=f"cumulative savings ({currency})",
        xaxis_title="plant time",
        **LAYOUT,
    )
    return fig


def ledger_frame(entries: Sequence[Mapping[str, object]]) -> pd.DataFrame:
    """Ledger entries as savings series: net (avoided cost minus false-alarm cost) and avoided only."""
    if not entries:
        return pd.DataFrame(columns=["ts", "series", "savings"])
    df = pd.DataFrame(list(entries))
    net = pd.DataFrame(
        {"ts": df["at"], "series": "net savings", "savings": df["cost_avoided"] - df["cost"]}
    )
    avoided = pd.DataFrame(
        {"ts": df["at"], "series": "failure cost avoided", "savings": df["cost_avoided"]}
    )
    return pd.concat([net, avoided], ignore_index=True)


def policy_frame(result: Mapping[str, object] | None) -> pd.DataFrame:
    """A backtest result's ``policies`` as rows: policy, cost, downtime_h, failures, caught, ..."""
    policies = (result or {}).get("policies") or {}
    if not isinstance(policies, Mapping):
        return pd.DataFrame()
    rows = [{"policy": name, **values} for name, values in policies.items()]
    return pd.DataFrame(rows)


def fig_policy_costs(df: pd.DataFrame, currency: str = "EUR") -> go.Figure:
    """Total cost per maintenance policy from a backtest. Columns: policy, cost (and downtime_h)."""
    title = (
        f"Backtest, in sample:<br>total cost per policy ({currency})"  # two lines: a narrow column
    )
    if df.empty:
        return _empty(title, "no backtest yet")
    colors = {"predictive": "#2ca02c", "run-to-failure": "#d62728", "fixed-interval": "#ff7f0e"}
    fig = go.Figure(
        go.Bar(
            x=df["policy"],
            y=df["cost"],
            marker_color=[colors.get(str(p), "#7f7f7f") for p in df["policy"]],
            text=[f"{currency} {c:,.0f}" for c in df["cost"]],
            textposition="outside",
        )
    )
    fig.update_layout(title=title, yaxis_title=f"cost ({currency})", height=380, **LAYOUT)
    fig.update_layout(margin={"t": 70})  # room for the two-line title
    return fig


def metrics_table(versions: pd.DataFrame) -> pd.DataFrame:
    """One row per version: label, aliases, then its numeric metrics flattened into columns."""
    rows = []
    for v in versions.itertuples():
        row: dict[str, object] = {
            "label": f"{v.name} v{v.version}",
            "aliases": ", ".join(v.aliases) if len(v.aliases) else "",
        }
        for k, val in (v.metrics or {}).items():
            if isinstance(val, int | float) and not isinstance(val, bool):
                row[k] = val
        rows.append(row)
    return pd.DataFrame(rows)


def fig_model_metrics(
    df: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> go.Figure:
    """Grouped bars of each version's metrics. Columns: label, then one column per metric;
    ``labels`` names the metrics for people (``roc_auc`` -> ``ROC-AUC``)."""
    title = "Model versions: metrics"
    if df.empty:
        return _empty(title, "no model versions registered")
    cols = list(metrics) if metrics is not None else [c for c in df.columns if c != "label"]
    fig = go.Figure()
    for col in cols:
        if col in df.columns:
            fig.add_trace(go.Bar(x=df["label"], y=df[col], name=(labels or {}).get(col, col)))
    fig.update_layout(barmode="group", title=title, **LAYOUT)
    return fig


def fig_role_comparison(df: pd.DataFrame) -> go.Figure:
    """Mean failure probability over time per scoring role. Columns: bucket, role, failure_prob."""
    title = "Mean failure probability per role (champion, challenger, online)"
    if df.empty:
        return _empty(title, "no predictions in this window")
    fig = go.Figure()
    for role, part in df.sort_values("bucket").groupby("role"):
        fig.add_trace(
            go.Scatter(x=part["bucket"], y=part["failure_prob"], mode="lines", name=str(role))
        )
    fig.update_layout(title=title, yaxis_title="mean P(failure)", **LAYOUT)
    return fig


def drift_what(detail: Any, sensor_units: Mapping[str, str | None] | None = None) -> str:
    """What a drift event saw, in words: the detectors that fired with human feature names."""
    if not isinstance(detail, Mapping):
        return "drift"
    units = {k: v for k, v in (sensor_units or {}).items() if v}
    fired = detail.get("fired")
    if isinstance(fired, Mapping) and fired:
        parts = []
        for key, n in fired.items():
            kind, _, feature = str(key).partition(":")
            what = (
                f"{human_name(feature, units)} shifted"
                if kind == "input" and feature
                else "prediction error grew"
                if kind == "error"
                else str(key)
            )
            parts.append(what if n == 1 else f"{what} ({n}×)")
        return "; ".join(parts)
    one, detector = detail.get("feature"), detail.get("detector")
    if one:  # one named detector (imported or seeded history)
        name = "prediction error" if one == "abs_error" else human_name(str(one), units)
        return f"{name} ({detector})" if detector else name
    n = detail.get("detectors")
    return f"{n} detector{'s' if n != 1 else ''} fired" if isinstance(n, int) else "drift"


def fig_drift(
    df: pd.DataFrame,
    window: tuple[datetime, datetime] | None = None,
    types: Mapping[str, Mapping[str, Any]] | None = None,
) -> go.Figure:
    """Drift detections on the plant clock: one row per machine type, at the plant time each event
    carries (``at``: the newest reading the detector saw), over the page's plant-time ``window``.
    Columns: at, target (type id), detail. ``types``: id -> {"name", "units"}."""
    title = "Drift detections (plant time)"
    types = types or {}
    if df.empty:
        fig = _empty(title, "no drift detected in this window")
        if window is not None:
            fig.update_xaxes(range=list(window))
        return fig
    details = df["detail"] if "detail" in df.columns else pd.Series([{}] * len(df), index=df.index)
    targets = [str(t) for t in df["target"]]
    rows = [str((types.get(t) or {}).get("name") or t) for t in targets]
    hover = [
        drift_what(d, (types.get(t) or {}).get("units"))
        for d, t in zip(details, targets, strict=True)
    ]
    fig = go.Figure(
        go.Scatter(
            x=df["at"],
            y=rows,
            mode="markers",
            text=hover,
            hovertemplate="%{x|%Y-%m-%d %H:%M} (plant)<br>%{y}: %{text}<extra></extra>",
            marker={"size": 14, "symbol": "x", "color": COLORS["medium"]},
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title="plant time (UTC)",
        yaxis_title="machine type",
        height=320,
        **LAYOUT,
    )
    # half a row of room above and below, so the outer rows' markers are not cut in half
    fig.update_yaxes(range=[-0.5, len(set(rows)) - 0.5])
    if window is not None:
        lo, hi = window
        seen = pd.to_datetime(df["at"], utc=True)
        # the plant window, widened to an event stamped after it (a plant ahead of the wall clock)
        fig.update_xaxes(
            range=[min(pd.Timestamp(lo), seen.min()), max(pd.Timestamp(hi), seen.max())]
        )
    return fig


def fig_reliability(report: Mapping[str, Any]) -> go.Figure:
    """Reliability diagram: observed failure rate against mean predicted probability per bin."""
    title = "Calibration of live predictions (reliability)"
    bins = list(report.get("bins") or [])
    if not bins:
        return _empty(title, "no labelled predictions yet (their horizon has not passed)")
    x = [b["mean_predicted"] for b in bins]
    y = [b["observed_rate"] for b in bins]
    n = [b["count"] for b in bins]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
            line={"dash": "dash", "color": "#7f7f7f"},
        )
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=x,
            y=y,
            mode="lines+markers",
            name="champion",
            marker={"size": [6 + 14 * (c / max(n)) ** 0.5 for c in n], "color": "#1f77b4"},
            text=[f"n={c}" for c in n],
            hovertemplate="predicted %{x:.0%}, observed %{y:.0%} (%{text})<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        xaxis={"title": "mean predicted P(failure)", "range": [0, 1], "tickformat": ".0%"},
        yaxis={"title": "observed failure rate", "range": [0, 1], "tickformat": ".0%"},
        **LAYOUT,
    )
    return fig

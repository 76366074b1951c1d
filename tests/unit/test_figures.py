"""Dashboard figure builders: pure functions of DataFrames, checked on the traces they produce."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard import auth, figures

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def _fleet() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "machine_id": ["m1", "m2", "m3", "m4"],
            "site_id": ["s1", "s1", "s2", "s2"],
            "type_id": ["cnc", "pump", "cnc", "pump"],
            "failure_prob": [0.91, 0.45, 0.05, None],
            "rul_h": [12.0, 200.0, 900.0, None],
            "open_alerts": [1, 0, 0, 0],
        }
    )


def test_fleet_risk_puts_each_machine_in_its_band_and_outlines_alerts() -> None:
    fig = figures.fig_fleet_risk(_fleet())
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {"high risk", "medium risk", "low risk"}  # m4 has no prediction
    assert list(by_name["high risk"].text) == ["m1"]
    assert list(by_name["high risk"].y) == [0.91]
    assert list(by_name["high risk"].marker.line.color) == ["black"]  # open alert
    assert list(by_name["medium risk"].marker.line.color) == ["white"]
    assert list(by_name["low risk"].x) == [900.0]
    assert fig.layout.xaxis.type == "log"


def test_fleet_risk_without_predictions_is_an_empty_figure_with_a_note() -> None:
    fig = figures.fig_fleet_risk(_fleet().assign(failure_prob=None))
    assert len(fig.data) == 0
    assert fig.layout.annotations[0].text == "no predictions yet"


def test_fleet_bands_counts_machines_per_site_and_band() -> None:
    fig = figures.fig_fleet_bands(_fleet())
    counts = {t.name: dict(zip(t.x, t.y, strict=True)) for t in fig.data}
    assert counts == {"high": {"s1": 1, "s2": 0}, "medium": {"s1": 1, "s2": 0},
                      "low": {"s1": 0, "s2": 1}, "unknown": {"s1": 0, "s2": 1}}  # fmt: skip


@pytest.mark.parametrize(
    ("prob", "band"),
    [(0.6, "high"), (0.59, "medium"), (0.3, "medium"), (0.0, "low"), (None, "unknown")],
)
def test_risk_band_edges(prob: float | None, band: str) -> None:
    assert figures.risk_band(prob) == band


def test_sensor_trends_has_probability_rul_and_one_row_per_sensor() -> None:
    buckets = [T0 + timedelta(hours=h) for h in range(3)]
    rollup = pd.DataFrame(
        [(b, s, 10.0 + i, 9.0, 12.0, 12) for i, b in enumerate(buckets) for s in ("temp", "vib")],
        columns=["bucket", "sensor", "mean", "min", "max", "n"],
    )
    preds = pd.DataFrame(
        {
            "bucket": buckets,
            "failure_prob": [0.1, 0.2, 0.7],
            "failure_prob_max": [0.15, 0.3, 0.8],
            "rul_h": [100.0, 80.0, 20.0],
            "rul_low_h": [70.0, 60.0, 10.0],
            "rul_high_h": [130.0, 100.0, 30.0],
        }
    )
    events = pd.DataFrame(
        {"ts": [T0 + timedelta(hours=1)], "kind": ["failure"], "label": ["bearing"]}
    )
    fig = figures.fig_sensor_trends(rollup, preds, events, units={"temp": "K", "vib": "mm/s"})
    titles = [a.text for a in fig.layout.annotations]
    assert titles[:4] == ["P(failure)", "RUL (h)", "Temp (K)", "Vib (mm/s)"]
    prob = next(t for t in fig.data if t.name == "P(failure)")
    assert list(prob.y) == [0.1, 0.2, 0.7]
    shade = next(t for t in fig.data if t.fill == "toself" and t.xaxis == prob.xaxis)
    assert list(shade.y) == [0.15, 0.3, 0.8, 0.7, 0.2, 0.1]  # up the max, back down the mean
    temp_mean = [t for t in fig.data if t.name == "temp"][0]
    assert list(temp_mean.y) == [10.0, 11.0, 12.0]
    failure = next(t for t in fig.data if t.name == "failure")
    assert list(failure.text) == ["bearing"]
    assert len([s for s in fig.layout.shapes if s.type == "line"]) >= 1  # the event's vline


def test_bands_break_at_downtime_instead_of_bridging_it() -> None:
    """A gap (downtime) splits a band into two outlines: nothing is filled across the gap."""
    hours = [0, 1, 2, 3, 10, 11, 12]  # no rollups for hours 4-9: the machine was down
    rollup = pd.DataFrame(
        [(T0 + timedelta(hours=h), "temp", 10.0, 9.0, 11.0 + h, 12) for h in hours],
        columns=["bucket", "sensor", "mean", "min", "max", "n"],
    )
    fig = figures.fig_sensor_trends(rollup, pd.DataFrame(columns=["bucket"]))
    (shade,) = [t for t in fig.data if t.fill == "toself"]
    xs = list(shade.x)
    assert xs.count(None) == 1
    cut = xs.index(None)
    before, after = xs[:cut], xs[cut + 1 :]
    assert max(before) == T0 + timedelta(hours=3) and min(after) == T0 + timedelta(hours=10)
    assert list(shade.y)[:cut] == [11.0, 12.0, 13.0, 14.0, 9.0, 9.0, 9.0, 9.0]
    x, y = figures.band(pd.Series([1, 2]), pd.Series([None, 5.0]), pd.Series([0.0, 1.0]))
    assert (x, y) == ([2, 2], [5.0, 1.0])  # a row with an unknown edge is left out


def test_sensor_trends_empty_inputs() -> None:
    empty = pd.DataFrame(columns=["bucket", "sensor", "mean", "min", "max"])
    fig = figures.fig_sensor_trends(empty, pd.DataFrame(columns=["bucket"]))
    assert len(fig.data) == 0


def test_contributions_sorted_by_magnitude_largest_on_top() -> None:
    fig = figures.fig_contributions({"a": 0.1, "b": -0.5, "c": 0.3, "d": 0.01}, top=3)
    bar = fig.data[0]
    assert list(bar.y) == ["A", "C", "B"]  # plotly draws the last category at the top
    assert list(bar.x) == [0.1, 0.3, -0.5]
    assert list(bar.marker.color) == [figures.COLORS["high"], figures.COLORS["high"], "#1f77b4"]
    assert len(figures.fig_contributions(None).data) == 0


def test_contributions_in_the_scorers_list_form_draw_the_same() -> None:
    as_list = [
        {"feature": "b", "value": -0.5},
        {"feature": "c", "value": 0.3},
        {"feature": "a", "value": 0.1},
    ]
    fig = figures.fig_contributions(as_list, top=3)
    assert list(fig.data[0].y) == ["A", "C", "B"]
    assert list(fig.data[0].x) == [0.1, 0.3, -0.5]


def test_downtime_stacks_causes_for_the_top_machines() -> None:
    df = pd.DataFrame(
        {
            "machine_id": ["m1", "m1", "m2", "m3"],
            "cause": ["bearing", "preventive", "seal", "preventive"],
            "downtime_h": [10.0, 2.0, 5.0, 1.0],
        }
    )
    fig = figures.fig_downtime(df, top=2)
    bars = {t.name: dict(zip(t.y, t.x, strict=True)) for t in fig.data}
    assert bars == {
        "bearing": {"m2": 0.0, "m1": 10.0},
        "preventive": {"m2": 0.0, "m1": 2.0},
        "seal": {"m2": 5.0, "m1": 0.0},
    }
    assert fig.layout.barmode == "stack"


def test_savings_are_cumulative_per_series_from_ledger_entries() -> None:
    entries = [
        {"at": T0, "cost_avoided": 5000.0, "cost": 0.0},
        {"at": T0 + timedelta(days=1), "cost_avoided": 0.0, "cost": 150.0},
        {"at": T0 + timedelta(days=2), "cost_avoided": 3000.0, "cost": 0.0},
    ]
    fig = figures.fig_savings(figures.ledger_frame(entries))
    lines = {t.name: list(t.y) for t in fig.data}
    assert lines == {
        "failure cost avoided": [5000.0, 5000.0, 8000.0],
        "net savings": [5000.0, 4850.0, 7850.0],
    }
    assert len(figures.fig_savings(figures.ledger_frame([])).data) == 0


def test_policy_frame_from_a_backtest_result() -> None:
    result = {
        "policies": {
            "run-to-failure": {"cost": 9000.0, "failures": 3, "caught": 0},
            "predictive": {"cost": 4000.0, "failures": 3, "caught": 2},
        },
        "threshold": 0.4,
    }
    df = figures.policy_frame(result)
    assert list(df["policy"]) == ["run-to-failure", "predictive"]
    assert list(df["caught"]) == [0, 2]
    assert figures.policy_frame(None).empty


def test_policy_costs_labels_each_bar() -> None:
    df = pd.DataFrame({"policy": ["predictive", "run-to-failure"], "cost": [1000.0, 2500.5]})
    bar = figures.fig_policy_costs(df, "CHF").data[0]
    assert list(bar.text) == ["CHF 1,000", "CHF 2,500"]


def test_savings_chart_is_filled_in_the_currency_and_causes_keep_their_colours() -> None:
    entries = [{"at": T0, "cost_avoided": 5000.0, "cost": 0.0}]
    fig = figures.fig_savings(figures.ledger_frame(entries), "USD")
    assert {t.fill for t in fig.data} == {"tozeroy"}
    assert "USD" in fig.layout.yaxis.title.text
    df = pd.DataFrame(
        {"machine_id": ["m1", "m2"], "cause": ["heat", "odd_mode"], "downtime_h": [2.0, 3.0]}
    )
    colours = {t.name: t.marker.color for t in figures.fig_downtime(df).data}
    again = {t.name: t.marker.color for t in figures.fig_downtime(df.iloc[::-1]).data}
    assert colours == again and colours["heat"] == figures.CAUSE_COLORS["heat"]


def test_model_metrics_and_role_comparison() -> None:
    versions = pd.DataFrame(
        {
            "name": ["lgbm", "lgbm"],
            "version": [2, 1],
            "aliases": [["challenger"], ["champion"]],
            "metrics": [{"roc_auc": 0.97, "note": "x"}, {"roc_auc": 0.95, "f1": 0.8}],
        }
    )
    table = figures.metrics_table(versions)
    assert list(table["label"]) == ["lgbm v2", "lgbm v1"]
    assert "note" not in table.columns  # only numbers are charted
    fig = figures.fig_model_metrics(table, ["roc_auc", "f1"])
    assert [list(t.y) for t in fig.data][0] == [0.97, 0.95]
    roles = pd.DataFrame(
        {
            "bucket": [T0, T0, T0 + timedelta(hours=1)],
            "role": ["champion", "challenger", "champion"],
            "failure_prob": [0.1, 0.12, 0.2],
        }  # fmt: skip
    )
    fig = figures.fig_role_comparison(roles)
    assert {t.name: list(t.y) for t in fig.data} == {"challenger": [0.12], "champion": [0.1, 0.2]}


def test_empty_frames_never_raise() -> None:
    for build in (
        figures.fig_downtime,
        figures.fig_downtime_daily,
        figures.fig_savings,
        figures.fig_policy_costs,
        figures.fig_model_metrics,
        figures.fig_role_comparison,
        figures.fig_drift,
        figures.fig_fleet_bands,
    ):
        fig = build(pd.DataFrame())
        assert isinstance(fig, go.Figure) and len(fig.data) == 0


def test_roles_follow_the_api_matrix() -> None:
    """Viewers read only; maintenance systems act but do not dismiss (api.auth.ACT / DISMISS)."""
    from api.auth import ACT, DISMISS

    assert auth.PERMISSIONS["acknowledge"] == ACT
    assert auth.PERMISSIONS["resolve"] == ACT
    assert auth.PERMISSIONS["dismiss"] == DISMISS
    assert not auth.can("viewer", "acknowledge")
    assert auth.can("maintenance", "resolve") and not auth.can("maintenance", "dismiss")
    assert not auth.can(None, "acknowledge")


def test_drift_marks_each_detection_on_its_machine_type() -> None:
    df = pd.DataFrame(
        {
            "at": [T0, T0 + timedelta(hours=1)],
            "target": ["pump", "cnc"],
            "action": ["drift", "drift"],
            "detail": [
                {"detectors": 1, "feature": "bearing_temp", "detector": "PageHinkley"},
                {"detectors": 3, "fired": {"input:torque__mean_24": 2, "error": 1}},
            ],
        }
    )
    types = {"pump": {"name": "Pump", "units": {"bearing_temp": "degC"}},
             "cnc": {"name": "CNC mill", "units": {"torque": "Nm"}}}  # fmt: skip
    trace = figures.fig_drift(df, types=types).data[0]
    assert list(trace.y) == ["Pump", "CNC mill"]
    assert list(trace.text) == [
        "Bearing temperature (°C) (PageHinkley)",
        "Torque — mean over 24 h (Nm) shifted (2×); prediction error grew",
    ]


def test_drift_is_drawn_on_the_plant_window_not_the_wall_clock() -> None:
    """The x axis spans the page's plant-time window; an event stamped after its end (a plant
    ahead of the wall clock) widens it rather than falling off the chart."""
    window = (T0 - timedelta(days=7), T0)
    df = pd.DataFrame({"at": [T0 - timedelta(days=2), T0 + timedelta(hours=5)],
                       "target": ["cnc", "cnc"], "detail": [{}, {}]})  # fmt: skip
    fig = figures.fig_drift(df, window=window)
    lo, hi = (pd.Timestamp(x) for x in fig.layout.xaxis.range)
    assert lo == pd.Timestamp(window[0]) and hi == pd.Timestamp(T0 + timedelta(hours=5))
    assert [pd.Timestamp(x, tz="UTC") for x in fig.data[0].x] == list(df["at"])
    assert fig.layout.xaxis.title.text == "plant time (UTC)"
    empty = figures.fig_drift(pd.DataFrame(), window=window)
    assert [pd.Timestamp(x) for x in empty.layout.xaxis.range] == [pd.Timestamp(w) for w in window]


def test_the_ingest_banner_speaks_when_data_stops_or_dead_letters_spike() -> None:
    from dashboard.data import pulse_warning

    assert pulse_warning({"stored": 500, "dead_lettered": 3, "any_data": True}, 120) is None
    assert pulse_warning({"stored": 0, "dead_lettered": 0, "any_data": False}, 120) is None
    stopped = pulse_warning({"stored": 0, "dead_lettered": 0, "any_data": True}, 120)
    assert stopped is not None and "No data has arrived for 120 s" in stopped
    spike = pulse_warning({"stored": 100, "dead_lettered": 50, "any_data": True}, 120)
    assert spike is not None and "50 of 150 messages" in spike


def test_a_maintenance_order_reads_as_what_the_plant_did() -> None:
    from datetime import UTC, datetime

    from dashboard.data import order_line

    at = datetime(2026, 1, 2, 3, 0, tzinfo=UTC)
    o = {"alert_id": 7, "action": "repair", "actor": "ana", "ordered_at": at}
    waiting = order_line({**o, "started_at": None, "done_at": None, "done_kind": None})
    assert waiting == "Alert #7: repair ordered by ana at 2026-01-02 03:00 · waiting for the plant"
    done = order_line({**o, "started_at": at, "done_at": at.replace(hour=9), "done_kind": "repair"})
    assert done.endswith("repair arrived: repair done by the plant at 2026-01-02 09:00")

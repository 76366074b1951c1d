"""Figures drawn once per distinct input: equal data reuses the figure, any change draws anew."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard import charts, figures


def _fleet(**change: object) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "machine_id": ["m1", "m2", "m3"],
            "site_id": ["s1", "s1", "s2"],
            "type_id": ["pump", "cnc", "pump"],
            "failure_prob": [0.9, 0.2, None],
            "rul_h": [12.0, 400.0, None],
            "open_alerts": [1, 0, 0],
            "last_reading_at": pd.to_datetime(["2026-03-01T10:00Z"] * 3),
        }
    )
    for col, value in change.items():
        df.loc[1, col] = value
    return df


def test_digest_follows_the_content_not_the_object() -> None:
    assert charts.digest(_fleet()) == charts.digest(_fleet())
    base = charts.digest(_fleet())
    assert charts.digest(_fleet(failure_prob=0.21)) != base
    assert charts.digest(_fleet(site_id="s2")) != base
    assert charts.digest(_fleet().rename(columns={"rul_h": "rul"})) != base
    assert charts.digest(_fleet(), units={"t": "K"}) != charts.digest(_fleet(), units={"t": "°C"})
    # unhashable cells (contribution lists) are digested too
    a = [{"feature": "temp", "value": 1.0}]
    assert charts.digest(pd.DataFrame({"c": [a]})) == charts.digest(pd.DataFrame({"c": [a]}))
    assert charts.digest(pd.DataFrame({"c": [a]})) != charts.digest(
        pd.DataFrame({"c": [[{"feature": "temp", "value": 2.0}]]})
    )


def test_a_figure_is_drawn_once_per_distinct_input() -> None:
    first = charts.figure(figures.fig_fleet_risk, _fleet())
    assert isinstance(first, go.Figure)
    assert charts.figure(figures.fig_fleet_risk, _fleet()) is first  # a copy of the same data
    assert first.to_json() == figures.fig_fleet_risk(_fleet()).to_json()  # what the builder draws
    changed = charts.figure(figures.fig_fleet_risk, _fleet(failure_prob=0.7))
    assert changed is not first
    assert changed.to_json() == figures.fig_fleet_risk(_fleet(failure_prob=0.7)).to_json()
    assert changed.to_json() != first.to_json()
    # another builder over the same frame is another figure
    assert charts.figure(figures.fig_fleet_bands, _fleet()) is not first

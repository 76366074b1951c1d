"""Human names with units for sensors and features, and figures that show what they say."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard import figures
from forewarn.names import human_name, sensor_name
from models.features import FeatureSpec

UNITS = {"process_temp": "K", "bearing_temp": "degC", "epr": "-", "vibration_rms": "mm/s"}


@pytest.mark.parametrize(
    ("feature", "name"),
    [
        ("process_temp__min_24", "Process temperature — min over 24 h (K)"),
        ("bearing_temp__mean_6", "Bearing temperature — mean over 6 h (°C)"),
        ("vibration_rms__slope_12", "Vibration (RMS) — trend over 12 h (mm/s per h)"),
        ("vibration_rms__std_5", "Vibration (RMS) — variability (std. dev.) over 5 h (mm/s)"),
        ("process_temp__ewm_20", "Process temperature — smoothed over about 20 h (K)"),
        ("epr", "Engine pressure ratio (EPR)"),
        ("time_since_maintenance", "Time since maintenance (h)"),
        ("regime", "Operating regime"),
        ("new_sensor__max_10", "New sensor — max over 10 h"),
    ],
)
def test_human_names(feature: str, name: str) -> None:
    assert human_name(feature, UNITS) == name


def test_every_feature_of_every_shipped_sensor_has_a_name_without_underscores() -> None:
    spec = FeatureSpec(sensors=tuple(UNITS))
    for f in spec.feature_names():
        assert "_" not in human_name(f, UNITS) and "None" not in human_name(f, UNITS), f
    assert sensor_name("flow", "m3/h") == "Flow (m³/h)"


def test_lines_break_across_downtime() -> None:
    hours = pd.to_datetime(["2026-03-01 00:00", "2026-03-01 01:00", "2026-03-01 02:00",
                            "2026-03-01 09:00", "2026-03-01 10:00"], utc=True)  # fmt: skip
    df = pd.DataFrame({"bucket": hours, "mean": [1.0, 2.0, 3.0, 4.0, 5.0]})
    out = figures.with_gaps(df)
    assert len(out) == 6 and out["mean"].isna().sum() == 1  # one break inside the 7 h gap
    assert figures.with_gaps(df.iloc[:3]).equals(df.iloc[:3])


def test_fleet_risk_shows_markers_at_one_and_labels_its_log_axis() -> None:
    df = pd.DataFrame({"machine_id": ["a", "b"], "failure_prob": [1.0, 0.2], "rul_h": [3.0, 400.0],
                       "open_alerts": [1, 0], "type_id": ["pump", "pump"]})  # fmt: skip
    fig = figures.fig_fleet_risk(df)
    assert fig.layout.yaxis.range[1] > 1.0
    assert all(t.cliponaxis is False for t in fig.data)
    assert list(fig.layout.xaxis.ticktext)[:4] == ["1 h", "2 h", "5 h", "10 h"]


def test_contributions_use_human_names() -> None:
    fig = figures.fig_contributions({"process_temp__min_24": 0.4, "regime": -0.1}, units=UNITS)
    assert set(fig.data[0].y) == {"Process temperature — min over 24 h (K)", "Operating regime"}

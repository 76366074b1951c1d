"""Calibration of live predictions: reliability bins, Brier, ECE; the figure; readable probabilities."""

from __future__ import annotations

import doctest

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import models.calibration as calibration_module
from dashboard import figures
from models.calibration import calibration, calibration_report


def test_doctests() -> None:
    assert doctest.testmod(calibration_module).failed == 0


def test_calibrated_probabilities_have_a_small_ece_and_overconfident_ones_do_not() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(20_000)
    y = (rng.random(20_000) < p).astype(int)  # outcomes drawn with the stated probability
    good = calibration(p, y)
    bad = calibration(np.where(p > 0.5, 1.0, 0.0), y)  # "always certain", as the demo showed
    assert good["ece"] < 0.02 and bad["ece"] > 0.2
    assert good["brier"] < bad["brier"]
    assert sum(b["count"] for b in good["bins"]) == 20_000


@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=60))
def test_bins_partition_the_predictions(rows: list[tuple[float, bool]]) -> None:
    c = calibration([p for p, _ in rows], [int(f) for _, f in rows])
    assert sum(b["count"] for b in c["bins"]) == len(rows) == c["n"]
    assert 0 <= c["ece"] <= 1 and 0 <= c["brier"] <= 1


def test_report_per_type_and_the_reliability_figure() -> None:
    rows = [("pump", 0.9, True), ("pump", 0.1, False), ("cnc", 0.5, True)]
    rep = calibration_report(rows, horizon_h=48)
    assert rep["n"] == 3 and set(rep["by_type"]) == {"cnc", "pump"}
    fig = figures.fig_reliability(rep)
    assert [t.name for t in fig.data] == ["perfectly calibrated", "champion"]
    assert len(figures.fig_reliability(calibration_report([], horizon_h=48)).data) == 0


def test_background_backtest_progress_reaches_the_roi_page(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from dashboard import data
    from forewarn.commands.backtest import _progress_writer

    monkeypatch.setenv("FOREWARN_STATE_DIR", str(tmp_path))
    (tmp_path / "run").mkdir()
    assert data.backtest_progress() is None
    write = _progress_writer(tmp_path / "run" / "backtest.progress.json")
    write(2, 5, "training the models")
    assert data.backtest_progress() == {"done": 2, "total": 5, "stage": "training the models"}

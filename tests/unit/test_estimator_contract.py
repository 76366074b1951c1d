"""Contract checks run over every estimator (batch LightGBM and online River)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.batch import FailureClassifier, RULRegressor, brier_score
from models.features import FeatureSpec
from models.online import OnlineFailureModel

N_MACHINES, ROWS = 40, 40


def _data(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = N_MACHINES * ROWS
    X = pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"f{i}" for i in range(6)])
    X.loc[rng.random(n) < 0.05, "f3"] = np.nan  # gaps in training data too
    y_reg = 40 + 10 * X["f0"] + 5 * X["f1"] ** 2 + rng.normal(scale=2, size=n)
    y_cls = (X["f0"] + X["f2"] + rng.normal(scale=0.5, size=n) > 1.0).astype(float)
    groups = np.repeat(np.arange(N_MACHINES), ROWS)
    return X, y_reg.to_numpy(), y_cls.to_numpy(), groups


ESTIMATORS: dict[str, tuple[Callable[[int], Any], str]] = {
    "rul_regressor": (lambda s: RULRegressor(num_boost_round=60, seed=s, cap=125.0), "reg"),
    "rul_regressor_bagged": (
        lambda s: RULRegressor(num_boost_round=40, seed=s, n_models=2, interval=False),
        "reg",
    ),
    "failure_classifier_isotonic": (
        lambda s: FailureClassifier(num_boost_round=60, seed=s, horizon=30.0),
        "cls",
    ),
    "failure_classifier_platt": (
        lambda s: FailureClassifier(num_boost_round=60, seed=s, calibration="platt"),
        "cls",
    ),
    "online_failure_model": (
        lambda s: OnlineFailureModel(FeatureSpec(sensors=("f0",)), seed=s, learning_rate=0.05),
        "cls",
    ),
}


@pytest.fixture(scope="module")
def fitted() -> dict[str, Any]:
    X, y_reg, y_cls, groups = _data()
    out = {}
    for name, (make, kind) in ESTIMATORS.items():
        y = y_reg if kind == "reg" else y_cls
        out[name] = make(0).fit(X.iloc[:1200], y[:1200], groups=groups[:1200])
    return out


def _split() -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    X, y_reg, y_cls, groups = _data()
    return X.iloc[:1200], X.iloc[1200:], y_reg, y_cls, groups


@pytest.mark.parametrize("name", ESTIMATORS)
def test_input_not_mutated(name: str) -> None:
    X, y_reg, y_cls, groups = _data()
    make, kind = ESTIMATORS[name]
    y = (y_reg if kind == "reg" else y_cls).copy()
    X_before, y_before = X.copy(), y.copy()
    est = make(0).fit(X, y, groups=groups)
    est.predict(X)
    pd.testing.assert_frame_equal(X, X_before)
    assert np.array_equal(y, y_before)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_save_load_round_trip_predicts_identically(name: str, fitted: dict[str, Any]) -> None:
    _, X_test, *_ = _split()
    est = fitted[name]
    data = est.save()
    assert isinstance(data, bytes)
    again = type(est).load(data)
    assert again.features == est.features
    assert np.array_equal(again.predict(X_test), est.predict(X_test))


@pytest.mark.parametrize("name", ESTIMATORS)
def test_fixed_seed_is_reproducible(name: str, fitted: dict[str, Any]) -> None:
    X_train, X_test, y_reg, y_cls, groups = _split()
    make, kind = ESTIMATORS[name]
    y = y_reg if kind == "reg" else y_cls
    again = make(0).fit(X_train, y[:1200], groups=groups[:1200])
    assert np.array_equal(again.predict(X_test), fitted[name].predict(X_test))


@pytest.mark.parametrize("name", ESTIMATORS)
def test_missing_features_tolerated(name: str, fitted: dict[str, Any]) -> None:
    _, X_test, *_ = _split()
    est = fitted[name]
    partial = X_test.drop(columns=["f1", "f4"]).assign(unexpected=1.0)[::-1]
    pred = est.predict(partial)
    assert pred.shape == (len(X_test),) and np.isfinite(pred).all()


@pytest.mark.parametrize("name", ESTIMATORS)
def test_beats_dummy_baseline(name: str, fitted: dict[str, Any]) -> None:
    _, X_test, y_reg, y_cls, _ = _split()
    _, kind = ESTIMATORS[name]
    pred = fitted[name].predict(X_test)
    if kind == "reg":
        y_tr, y_te = y_reg[:1200], y_reg[1200:]
        dummy = np.sqrt(np.mean((y_te - y_tr.mean()) ** 2))
        model = np.sqrt(np.mean((y_te - pred) ** 2))
        assert model < 0.5 * dummy, (model, dummy)
    else:
        y_tr, y_te = y_cls[:1200], y_cls[1200:]
        dummy = brier_score(y_te, np.full(len(y_te), y_tr.mean()))
        model = brier_score(y_te, pred)
        assert model < 0.7 * dummy, (model, dummy)
        assert ((pred >= 0) & (pred <= 1)).all()


def test_classifier_reports_calibration_on_held_out_machines(fitted: dict[str, Any]) -> None:
    m = fitted["failure_classifier_isotonic"].metrics
    assert 0 <= m["ece"] < 0.1 and 0 < m["brier"] < 0.15


def test_rul_interval_covers_most_truths_and_contains_point(fitted: dict[str, Any]) -> None:
    _, X_test, y_reg, *_ = _split()
    est = fitted["rul_regressor"]
    low, high = est.predict_interval(X_test)
    point = est.predict(X_test)
    assert (low <= point).all() and (point <= high).all()
    coverage = np.mean((y_reg[1200:] >= low) & (y_reg[1200:] <= high))
    assert coverage >= 0.7  # nominal 0.8


def test_contributions_name_the_driving_features(fitted: dict[str, Any]) -> None:
    _, X_test, *_ = _split()
    top = fitted["rul_regressor"].contributions(X_test.iloc[:50], k=2)
    assert len(top) == 50 and all(len(r) == 2 for r in top)
    named = [name for row in top for name, _ in row]
    assert named.count("f0") + named.count("f1") > 0.8 * len(named)


def test_loading_the_wrong_artifact_kind_is_refused(fitted: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not a"):
        FailureClassifier.load(fitted["rul_regressor"].save())

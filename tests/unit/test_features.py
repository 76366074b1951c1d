"""Feature and label tests: batch and streaming paths agree, regimes are learned from train only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.features import (
    REGIME,
    TIME_SINCE_MAINTENANCE,
    FeatureSpec,
    FeatureState,
    FleetFeatures,
    RegimeNormalizer,
    compute_features,
)
from models.labels import failure_within, label_one, rul_from_failures, rul_run_to_failure

SENSORS = ("s1", "s2", "s3")


def _fleet(
    n_machines: int = 3, n: int = 40, seed: int = 0, six_regimes: bool = False
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(6, 2)) * 10
    rows = []
    for m in range(n_machines):
        for c in range(1, n + 1 + m * 5):
            r = int(rng.integers(6)) if six_regimes else 0
            base = centers[r] if six_regimes else np.zeros(2)
            rows.append(
                {
                    "machine_id": f"m{m}",
                    "cycle": c,
                    "op1": base[0] + rng.normal(scale=0.01),
                    "op2": base[1] + rng.normal(scale=0.01),
                    "s1": 100 * r + 0.1 * c + rng.normal(),
                    "s2": -50 * r + rng.normal(scale=2),
                    "s3": rng.normal() if c % 7 else np.nan,  # gaps must be tolerated
                    "maintenance": c == 25,
                }
            )
    return pd.DataFrame(rows)


def _stream(df: pd.DataFrame, spec: FeatureSpec, norm: RegimeNormalizer | None) -> pd.DataFrame:
    """Replay readings interleaved across machines, as they would arrive."""
    ordered = df.sort_values(["cycle", "machine_id"], kind="stable")
    fleet = FleetFeatures(spec, norm)
    feats = [fleet.update(r) for r in ordered.to_dict("records")]
    return pd.DataFrame(feats, index=ordered.index).loc[df.index]


def test_batch_and_streaming_features_are_identical() -> None:
    df = _fleet(six_regimes=True)
    norm = RegimeNormalizer.fit(df, SENSORS, ("op1", "op2"))
    spec = FeatureSpec(sensors=SENSORS, windows=(3, 5, 10), ewm_spans=(4, 10))
    batch = compute_features(df, spec, norm)
    stream = _stream(df, spec, norm)
    assert list(batch.columns) == spec.feature_names() == list(stream.columns)
    assert np.allclose(batch.to_numpy(), stream.to_numpy(), equal_nan=True)
    assert batch.notna().to_numpy().mean() > 0.9


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.none(), st.floats(-1e3, 1e3, allow_nan=False)), min_size=1, max_size=30
    ),
    window=st.integers(1, 6),
)
def test_streaming_matches_batch_for_any_sequence(values: list[float | None], window: int) -> None:
    df = pd.DataFrame(
        {
            "machine_id": "m",
            "cycle": np.arange(len(values)) * 1.5,
            "s1": [np.nan if v is None else v for v in values],
        }
    )
    spec = FeatureSpec(sensors=("s1",), windows=(window, window + 2), ewm_spans=(3,))
    batch = compute_features(df, spec)
    state = FeatureState(spec)
    stream = pd.DataFrame([state.update(r) for r in df.to_dict("records")], index=df.index)
    assert np.allclose(batch.to_numpy(), stream.to_numpy(), equal_nan=True, atol=1e-6)


def test_window_statistics_by_hand() -> None:
    df = pd.DataFrame({"machine_id": "m", "cycle": [1, 2, 3, 4], "s1": [1.0, 3.0, 2.0, 6.0]})
    f = compute_features(df, FeatureSpec(sensors=("s1",), windows=(3,), ewm_spans=(1, 3)))
    last = f.iloc[-1]
    assert last["s1__mean_3"] == pytest.approx(11 / 3)
    assert last["s1__std_3"] == pytest.approx(np.std([3.0, 2.0, 6.0]))
    assert (last["s1__min_3"], last["s1__max_3"]) == (2.0, 6.0)
    assert last["s1__slope_3"] == pytest.approx(np.polyfit([2, 3, 4], [3.0, 2.0, 6.0], 1)[0])
    assert last["s1__ewm_1"] == 6.0  # span 1 -> alpha 1 -> the latest value
    assert f["s1__ewm_3"].tolist() == pytest.approx([1.0, 2.0, 2.0, 4.0])
    assert f[TIME_SINCE_MAINTENANCE].tolist() == [0, 1, 2, 3]


def test_datetime_time_column_is_hours_and_maintenance_resets() -> None:
    ts = pd.date_range("2026-01-01", periods=6, freq="30min", tz="UTC")
    df = pd.DataFrame(
        {"machine_id": "m", "ts": ts, "s1": [1.0, 2, 3, 4, 5, 6], "maintenance": [0, 0, 0, 1, 0, 0]}
    )
    spec = FeatureSpec(sensors=("s1",), windows=(5,), ewm_spans=(), time_col="ts")
    f = compute_features(df, spec)
    assert f[TIME_SINCE_MAINTENANCE].tolist() == [0, 0.5, 1.0, 0, 0.5, 1.0]
    assert f["s1__slope_5"].iloc[2] == pytest.approx(2.0)  # 1 unit per 30 min
    assert f["s1__mean_5"].iloc[3] == 4.0  # window restarted at maintenance
    state = FeatureState(spec)
    streamed = [state.update(r) for r in df.to_dict("records")]
    assert [s[TIME_SINCE_MAINTENANCE] for s in streamed] == [0, 0.5, 1.0, 0, 0.5, 1.0]


def test_input_not_mutated_and_order_preserved() -> None:
    df = _fleet().sample(frac=1.0, random_state=1)
    before = df.copy()
    spec = FeatureSpec(sensors=SENSORS)
    f = compute_features(df, spec)
    pd.testing.assert_frame_equal(df, before)
    assert f.index.equals(df.index)


def test_regime_normalizer_finds_six_conditions_from_train_only() -> None:
    train = _fleet(six_regimes=True, seed=1)
    norm = RegimeNormalizer.fit(train, SENSORS, ("op1", "op2"))
    assert norm.n_regimes == 6
    test = _fleet(six_regimes=True, seed=1).iloc[::3]
    z, regime = norm._normalize_frame(test)
    # s2 is driven only by the regime: once normalised per regime it is noise around 0
    assert abs(np.nanmean(z[:, 1])) < 0.2 and np.nanstd(z[:, 1]) < 1.5
    f = compute_features(test, FeatureSpec(sensors=SENSORS), norm)
    assert set(f[REGIME].unique()) <= set(range(6))
    again = RegimeNormalizer.from_dict(norm.to_dict())
    assert np.array_equal(again._normalize_frame(test)[0], z, equal_nan=True)


def test_single_condition_data_gets_one_regime() -> None:
    train = _fleet(six_regimes=False)
    assert RegimeNormalizer.fit(train, SENSORS, ("op1", "op2")).n_regimes == 1


def test_missing_sensor_column_gives_nan_features_not_an_error() -> None:
    df = _fleet().drop(columns=["s2"])
    f = compute_features(df, FeatureSpec(sensors=SENSORS))
    assert f["s2__mean_5"].isna().all() and f["s1__mean_5"].notna().all()


def test_rul_labels() -> None:
    df = pd.DataFrame({"machine_id": [1, 1, 1, 2, 2], "cycle": [1, 2, 3, 1, 200]})
    assert rul_run_to_failure(df).tolist() == [2, 1, 0, 125, 0]
    rul = rul_from_failures(df, {"1": [2.5]})
    assert rul.iloc[:2].tolist() == [1.5, 0.5] and rul.iloc[2:].isna().all()


def test_failure_within_horizon_leaves_unfinished_horizons_unknown() -> None:
    df = pd.DataFrame({"machine_id": ["a"] * 4 + ["b"] * 2, "cycle": [1, 5, 9, 12, 1, 11]})
    y = failure_within(df, {"a": [10.0]}, horizon=5, now=12)
    assert y.iloc[:4].tolist()[:3] == [0.0, 1.0, 1.0]
    assert np.isnan(y.iloc[3])  # after the failure, horizon not yet passed
    assert y.iloc[4] == 0.0 and np.isnan(y.iloc[5])
    assert label_one(5, 10.0, 5, 12) == 1.0
    assert label_one(1, 10.0, 5, 12) == 0.0
    assert label_one(11, None, 5, 12) is None

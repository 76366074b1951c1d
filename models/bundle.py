"""The deployed model for one machine type: features + failure classifier + RUL + failure mode.

A bundle is what the registry versions and what scoring loads. Pure: fit on frames, score frames,
save to bytes. Training and serving call the same :func:`features_for`, so there is no skew.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from models.batch import (
    FailureClassifier,
    RULRegressor,
    brier_score,
    expected_calibration_error,
    lgb_params,
)
from models.features import TIME_SINCE_MAINTENANCE, FeatureSpec, RegimeNormalizer, compute_features
from models.frames import TIME_COL
from models.labels import failure_within, rul_from_failures

BUNDLE_FORMAT = 1
WINDOWS_H = (6, 24, 72)
EWM_SPANS_H = (12, 48)
TOP_K = 5
MIN_MACHINES = 4  # fit, calibrate and evaluate each need machines of their own
# Scoring reads this many hours back; time since maintenance is capped below it in training AND
# serving, so a scored row's features never depend on history the scorer did not read.
SCORING_LOOKBACK_H = 8 * 24
# One thread: the product's models train and score beside ingest, the API and the database on a
# small machine, where a second OpenMP thread only spins against them.
PRODUCT_PARAMS: dict[str, Any] = {"num_threads": 1, "learning_rate": 0.05, "num_leaves": 31}
TSM_CAP_H = 7 * 24


def feature_spec(sensors: Sequence[str]) -> FeatureSpec:
    """Windows in hours over the hourly frame (6 h, 1 day, 3 days) plus EWMs."""
    return FeatureSpec(
        sensors=tuple(sensors),
        windows=WINDOWS_H,
        ewm_spans=EWM_SPANS_H,
        time_col=TIME_COL,
        maintenance_col="maintenance",
    )


def features_for(
    hourly: pd.DataFrame, spec: FeatureSpec, normalizer: RegimeNormalizer
) -> pd.DataFrame:
    """THE feature computation of the product, for training and for scoring."""
    X = compute_features(hourly, spec, normalizer)
    X[TIME_SINCE_MAINTENANCE] = X[TIME_SINCE_MAINTENANCE].clip(upper=TSM_CAP_H)
    return X


def _mode_at(
    modes: Mapping[str, list[tuple[float, str]]], machine: str, t: float, horizon: float
) -> str | None:
    for tf, mode in modes.get(machine, []):
        if t <= tf <= t + horizon:
            return mode
    return None


@dataclass
class ModelBundle:
    type_id: str
    horizon_h: float
    spec: FeatureSpec
    normalizer: RegimeNormalizer
    classifier: FailureClassifier
    rul: RULRegressor
    modes: list[str] = field(default_factory=list)
    mode_booster: lgb.Booster | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    # -- training ---------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        type_id: str,
        hourly: pd.DataFrame,
        failures: Mapping[str, list[float]],
        modes: Mapping[str, list[tuple[float, str]]],
        sensors: Sequence[str],
        *,
        horizon_h: float,
        now_h: float,
        seed: int = 0,
        holdout_fraction: float = 0.25,
    ) -> ModelBundle:
        """Fit on a share of machines, measure on the held-out rest (never a machine's future)."""
        normalizer = RegimeNormalizer.fit(
            hourly, sensors, regime_col="regime" if hourly["regime"].notna().any() else None
        )
        spec = feature_spec(normalizer.informative_sensors(hourly) or tuple(sensors))
        X = features_for(hourly, spec, normalizer)
        y = failure_within(hourly, failures, horizon_h, now=now_h, time_col=TIME_COL)
        rul = rul_from_failures(hourly, failures, time_col=TIME_COL)
        machines = hourly["machine_id"].astype(str).to_numpy()
        rng = np.random.default_rng(seed)
        uniq = np.unique(machines)
        if len(uniq) < MIN_MACHINES:
            raise ValueError(
                f"{type_id}: {len(uniq)} machine(s) of history; need {MIN_MACHINES} to hold some out"
            )
        held = set(
            rng.choice(uniq, size=max(1, round(len(uniq) * holdout_fraction)), replace=False)
        )
        test = np.array([m in held for m in machines])
        known = y.notna().to_numpy()
        train_c, test_c = known & ~test, known & test
        if y[train_c].nunique() < 2:
            raise ValueError(f"{type_id}: training history has no failures within the horizon")
        clf = FailureClassifier(
            params=PRODUCT_PARAMS, num_boost_round=200, seed=seed, horizon=horizon_h
        ).fit(X[train_c], y[train_c], groups=machines[train_c])
        has_rul = rul.notna().to_numpy()
        reg = RULRegressor(params=PRODUCT_PARAMS, num_boost_round=200, seed=seed, cap=None).fit(
            X[has_rul & ~test], rul[has_rul & ~test], groups=machines[has_rul & ~test]
        )
        bundle = cls(type_id, horizon_h, spec, normalizer, clf, reg)
        bundle._fit_modes(X, hourly, modes, train_c & (y == 1).to_numpy(), seed)
        bundle.metrics = bundle.evaluate(
            X[test_c], y[test_c], rul[test_c & has_rul], X[test_c & has_rul]
        )
        bundle.metrics.update(
            train_rows=float(train_c.sum()),
            test_rows=float(test_c.sum()),
            test_machines=float(len(held)),
        )
        return bundle

    def _fit_modes(
        self,
        X: pd.DataFrame,
        hourly: pd.DataFrame,
        modes: Mapping[str, list[tuple[float, str]]],
        positive: np.ndarray,
        seed: int,
    ) -> None:
        rows = np.flatnonzero(positive)
        labels = [
            _mode_at(modes, str(m), float(t), self.horizon_h)
            for m, t in zip(
                hourly["machine_id"].to_numpy()[rows],
                hourly[TIME_COL].to_numpy()[rows],
                strict=True,
            )
        ]
        known = [(i, lab) for i, lab in enumerate(labels) if lab is not None]
        self.modes = sorted({lab for _, lab in known})
        if len(self.modes) < 2:
            return
        index = {m: i for i, m in enumerate(self.modes)}
        picked = rows[[i for i, _ in known]]
        data = X.iloc[picked].reindex(columns=self.classifier.features).to_numpy(dtype=float)
        target = np.array([index[lab] for _, lab in known])
        params = lgb_params(
            seed, objective="multiclass", num_class=len(self.modes), **PRODUCT_PARAMS
        )
        self.mode_booster = lgb.train(params, lgb.Dataset(data, target), num_boost_round=100)

    def evaluate(
        self, X: pd.DataFrame, y: pd.Series, rul_true: pd.Series, X_rul: pd.DataFrame
    ) -> dict[str, float]:
        """Held-out machines: ROC-AUC, PR-AUC, Brier, calibration error; RUL MAE (h) and interval coverage."""
        out: dict[str, float] = {}
        if len(y) and y.nunique() == 2:
            p = self.classifier.predict_proba(X)
            out.update(
                roc_auc=float(roc_auc_score(y, p)),
                pr_auc=float(average_precision_score(y, p)),
                brier=brier_score(y, p),
                ece=expected_calibration_error(y, p),
                positives=float(y.sum()),
            )
        if len(rul_true):
            pred = self.rul.predict(X_rul)
            out["rul_mae_h"] = float(np.mean(np.abs(pred - rul_true.to_numpy())))
            lo, hi = self.rul.predict_interval(X_rul)
            t = rul_true.to_numpy()
            out["rul_interval_coverage"] = float(np.mean((t >= lo) & (t <= hi)))
        return out

    # -- serving ----------------------------------------------------------------------------
    def score(self, hourly: pd.DataFrame) -> pd.DataFrame:
        """One prediction per machine, at its latest hour of ``hourly``."""
        if hourly.empty:
            return pd.DataFrame()
        X = features_for(hourly, self.spec, self.normalizer)
        last = hourly.groupby("machine_id", sort=False)[TIME_COL].idxmax()
        X_last = X.loc[last.to_numpy()]
        prob = self.classifier.predict_proba(X_last)
        rul = self.rul.predict(X_last)
        lo, hi = self.rul.predict_interval(X_last)
        contribs = self.classifier.contributions(X_last, k=TOP_K)
        mode = self._predict_modes(X_last)
        return pd.DataFrame(
            {
                "machine_id": hourly.loc[last.to_numpy(), "machine_id"].to_numpy(),
                "ts": hourly.loc[last.to_numpy(), "ts"].to_numpy(),
                "failure_prob": prob,
                "rul_h": rul,
                "rul_low_h": lo,
                "rul_high_h": hi,
                "mode": mode,
                "contributions": [
                    [{"feature": f, "value": float(v)} for f, v in row] for row in contribs
                ],
            }
        )

    def _predict_modes(self, X: pd.DataFrame) -> list[str]:
        if self.mode_booster is None:
            return [self.modes[0] if self.modes else "unknown"] * len(X)
        p = self.mode_booster.predict(
            X.reindex(columns=self.classifier.features).to_numpy(dtype=float)
        )
        return [self.modes[int(i)] for i in np.asarray(p).argmax(axis=1)]

    # -- persistence ------------------------------------------------------------------------
    def save(self) -> bytes:
        """JSON bytes (no pickle): the artifact the registry stores and hashes."""
        return json.dumps(
            {
                "format": BUNDLE_FORMAT,
                "type_id": self.type_id,
                "horizon_h": self.horizon_h,
                "sensors": list(self.spec.sensors),
                "normalizer": self.normalizer.to_dict(),
                "classifier": self.classifier.save().decode(),
                "rul": self.rul.save().decode(),
                "modes": self.modes,
                "mode_booster": None
                if self.mode_booster is None
                else self.mode_booster.model_to_string(),
                "metrics": self.metrics,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def load(cls, data: bytes) -> ModelBundle:
        d: dict[str, Any] = json.loads(data)
        if d.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"unsupported model bundle format {d.get('format')!r}")
        booster = d["mode_booster"]
        return cls(
            type_id=d["type_id"],
            horizon_h=float(d["horizon_h"]),
            spec=feature_spec(d["sensors"]),
            normalizer=RegimeNormalizer.from_dict(d["normalizer"]),
            classifier=FailureClassifier.load(d["classifier"].encode()),
            rul=RULRegressor.load(d["rul"].encode()),
            modes=list(d["modes"]),
            mode_booster=None if booster is None else lgb.Booster(model_str=booster),
            metrics=dict(d["metrics"]),
        )

    @property
    def features(self) -> list[str]:
        return self.classifier.features

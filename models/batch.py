"""LightGBM batch estimators: RUL regressor with intervals, calibrated failure classifier.

Every estimator follows `Estimator`: ``fit(X, y)``, ``predict(X)``, ``save() -> bytes``,
``load(bytes)``, and a ``features`` list. Columns missing at predict time become NaN (LightGBM
routes them down its learned missing-value branch); extra columns are ignored. Artifacts are
JSON (LightGBM model text + numbers), never pickle, so loading one from the registry cannot
execute code. Training is deterministic for a given seed (``deterministic=True``, 2 threads).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, Self

import numpy as np
import pandas as pd

# OpenMP threads spin while waiting by default; on a shared 2-core machine that made a
# LightGBM fit 14x slower (measured: 5 small fits 57 s vs 3.9 s with PASSIVE). It only takes
# effect if set before LightGBM's OpenMP runtime starts, hence here, before the import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import lightgbm as lgb  # noqa: E402

NUM_THREADS = 2


class Estimator(Protocol):
    """The protocol every batch and online estimator follows."""

    features: list[str]

    def fit(self, X: pd.DataFrame, y: Any, *, groups: Any = None) -> Self: ...

    def predict(self, X: pd.DataFrame) -> np.ndarray: ...

    def save(self) -> bytes: ...

    @classmethod
    def load(cls, data: bytes) -> Self: ...


def lgb_params(seed: int, **overrides: Any) -> dict[str, Any]:
    """Base LightGBM parameters: deterministic, 2 threads, quiet."""
    params: dict[str, Any] = {
        "num_threads": NUM_THREADS,
        "deterministic": True,
        "force_row_wise": True,
        "seed": seed,
        "verbose": -1,
    }
    params.update(overrides)
    return params


def _matrix(X: pd.DataFrame, features: Sequence[str]) -> np.ndarray:
    return np.asarray(X.reindex(columns=list(features)).to_numpy(dtype=float))


def _booster(s: str) -> lgb.Booster:
    return lgb.Booster(model_str=s)


def _pred(b: lgb.Booster, X: np.ndarray) -> np.ndarray:
    return np.asarray(b.predict(X), dtype=float)


def _group_split(
    n: int, groups: Any, frac: float, seed: int, y: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (fit, held_out): held-out rows are whole machines when groups are given."""
    rng = np.random.default_rng(seed)
    g = None if groups is None else np.asarray(groups).astype(str)
    uniq = np.unique(g) if g is not None else np.zeros(0)
    if g is not None and len(uniq) >= 2:
        # at least one machine on each side, whatever the fraction
        size = min(max(1, round(len(uniq) * frac)), len(uniq) - 1)
        held = set(rng.choice(uniq, size=size, replace=False))
        hold = np.array([x in held for x in g])
    elif y is not None and len(np.unique(y)) == 2:  # stratified on the label
        hold = np.zeros(n, dtype=bool)
        for cls in np.unique(y):
            idx = np.flatnonzero(y == cls)
            hold[rng.choice(idx, size=max(1, round(len(idx) * frac)), replace=False)] = True
    else:
        hold = rng.random(n) < frac
    return ~hold, hold


def top_contributions(
    booster: lgb.Booster, X: np.ndarray, features: Sequence[str], k: int = 5
) -> list[list[tuple[str, float]]]:
    """Per row, the ``k`` features with the largest absolute SHAP contribution (pred_contrib)."""
    contrib = np.asarray(booster.predict(X, pred_contrib=True))[:, :-1]  # last column = bias
    order = np.argsort(-np.abs(contrib), axis=1)[:, :k]
    return [[(features[j], float(contrib[i, j])) for j in row] for i, row in enumerate(order)]


class _LGBMBase:
    kind: ClassVar[str] = ""

    def __init__(
        self, *, params: dict[str, Any] | None = None, num_boost_round: int = 400, seed: int = 0
    ) -> None:
        self.params = dict(params or {})
        self.num_boost_round = num_boost_round
        self.seed = seed
        self.features: list[str] = []
        self.booster: lgb.Booster | None = None
        self.metrics: dict[str, float] = {}

    def _train(
        self, X: np.ndarray, y: np.ndarray, objective: str, seed: int | None = None, **extra: Any
    ) -> lgb.Booster:
        params = lgb_params(
            self.seed if seed is None else seed, objective=objective, **{**self.params, **extra}
        )
        rounds = int(params.pop("num_boost_round", self.num_boost_round))
        ds = lgb.Dataset(
            X, label=y, feature_name=[f"f{i}" for i in range(X.shape[1])], free_raw_data=True
        )
        return lgb.train(params, ds, num_boost_round=rounds)

    def contributions(self, X: pd.DataFrame, k: int = 5) -> list[list[tuple[str, float]]]:
        """Top-k feature contributions of the point model for each row of ``X``."""
        assert self.booster is not None, "fit or load first"
        return top_contributions(self.booster, _matrix(X, self.features), self.features, k)

    def _state(self) -> dict[str, Any]:
        assert self.booster is not None, "fit before save"
        return {
            "kind": self.kind,
            "params": self.params,
            "num_boost_round": self.num_boost_round,
            "seed": self.seed,
            "features": self.features,
            "booster": self.booster.model_to_string(),
            "metrics": self.metrics,
        }

    def _restore(self, d: dict[str, Any]) -> None:
        self.features = list(d["features"])
        self.booster = _booster(d["booster"])
        self.metrics = dict(d["metrics"])

    def save(self) -> bytes:
        """Serialise to JSON bytes (no pickle)."""
        return json.dumps(self._state()).encode()

    @classmethod
    def load(cls, data: bytes) -> Self:
        """Inverse of `save`."""
        d = json.loads(data)
        if d.get("kind") != cls.kind:
            raise ValueError(f"artifact is a {d.get('kind')!r}, not a {cls.kind!r}")
        est = cls.__new__(cls)
        _LGBMBase.__init__(
            est, params=d["params"], num_boost_round=d["num_boost_round"], seed=d["seed"]
        )
        est._restore(d)
        return est


class RULRegressor(_LGBMBase):
    """Remaining useful life, with a conformalised quantile interval (CQR).

    The point model trains on everything. Quantile models for ``alpha/2`` and ``1-alpha/2``
    train on ~80% of machines; the other machines calibrate a CQR margin so the interval
    covers about ``1-alpha`` of true values. ``n_models`` > 1 averages seeds (bagging).
    """

    kind = "rul_regressor"

    def __init__(
        self,
        *,
        params: dict[str, Any] | None = None,
        num_boost_round: int = 400,
        seed: int = 0,
        cap: float | None = None,
        alpha: float = 0.2,
        n_models: int = 1,
        interval: bool = True,
    ) -> None:
        super().__init__(params=params, num_boost_round=num_boost_round, seed=seed)
        self.cap, self.alpha, self.n_models, self.interval = cap, alpha, n_models, interval
        self.extra: list[lgb.Booster] = []
        self.quantile: list[lgb.Booster] = []
        self.margin = 0.0

    def fit(self, X: pd.DataFrame, y: Any, *, groups: Any = None) -> Self:
        """Fit the point model(s) and, if ``interval``, the calibrated quantile pair."""
        self.features = [str(c) for c in X.columns]
        Xm, ya = _matrix(X, self.features), np.asarray(y, dtype=float)
        boosters = [
            self._train(Xm, ya, "regression", seed=self.seed + i) for i in range(self.n_models)
        ]
        self.booster, self.extra = boosters[0], boosters[1:]
        self.quantile, self.margin = [], 0.0
        if self.interval:
            fit, cal = _group_split(len(ya), groups, 0.2, self.seed)
            # Cheaper than the point model: a quarter of the rounds at a higher learning rate
            # (CQR calibration below restores coverage whatever their quality).
            lr = float(self.params.get("learning_rate", 0.1))
            qp: dict[str, Any] = {
                "num_boost_round": max(100, self.num_boost_round // 4),
                "learning_rate": min(0.1, 2.5 * lr),
            }
            self.quantile = [
                self._train(Xm[fit], ya[fit], "quantile", alpha=a, **qp)
                for a in (self.alpha / 2, 1 - self.alpha / 2)
            ]
            lo, hi = (_pred(b, Xm[cal]) for b in self.quantile)
            scores = np.maximum(lo - ya[cal], ya[cal] - hi)
            n = len(scores)
            level = min(1.0, math.ceil((n + 1) * (1 - self.alpha)) / n)
            self.margin = float(np.quantile(scores, level))
            self.metrics["interval_margin"] = self.margin
        return self

    def _clip(self, v: np.ndarray) -> np.ndarray:
        return np.asarray(np.clip(v, 0.0, self.cap if self.cap is not None else np.inf))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Point RUL (clipped to ``[0, cap]``)."""
        assert self.booster is not None, "fit or load first"
        Xm = _matrix(X, self.features)
        preds = [_pred(b, Xm) for b in [self.booster, *self.extra]]
        return self._clip(np.mean(preds, axis=0))

    def predict_interval(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) RUL bounds with about ``1-alpha`` coverage."""
        if not self.quantile:
            raise ValueError("fitted without interval=True")
        Xm = _matrix(X, self.features)
        lo, hi = (_pred(b, Xm) for b in self.quantile)
        point = self.predict(X)
        low = np.minimum(self._clip(lo - self.margin), point)
        high = np.maximum(self._clip(hi + self.margin), point)
        return low, high

    def _state(self) -> dict[str, Any]:
        d = super()._state()
        d.update(
            cap=self.cap,
            alpha=self.alpha,
            n_models=self.n_models,
            interval=self.interval,
            extra=[b.model_to_string() for b in self.extra],
            quantile=[b.model_to_string() for b in self.quantile],
            margin=self.margin,
        )
        return d

    def _restore(self, d: dict[str, Any]) -> None:
        super()._restore(d)
        self.cap, self.alpha = d["cap"], d["alpha"]
        self.n_models, self.interval = d["n_models"], d["interval"]
        self.extra = [_booster(s) for s in d["extra"]]
        self.quantile = [_booster(s) for s in d["quantile"]]
        self.margin = d["margin"]


class FailureClassifier(_LGBMBase):
    """Probability of failure within a horizon, calibrated on held-out machines.

    The booster trains on ~80% of machines (rows when no groups are given); isotonic regression
    (or Platt scaling) fitted on the held-out rest maps scores to probabilities. Brier score and
    expected calibration error on that held-out part are kept in ``metrics``.
    """

    kind = "failure_classifier"

    def __init__(
        self,
        *,
        params: dict[str, Any] | None = None,
        num_boost_round: int = 300,
        seed: int = 0,
        horizon: float | None = None,
        calibration: str = "isotonic",
        calibration_fraction: float = 0.2,
    ) -> None:
        super().__init__(params=params, num_boost_round=num_boost_round, seed=seed)
        if calibration not in ("isotonic", "platt", "none"):
            raise ValueError(f"unknown calibration {calibration!r}")
        self.horizon, self.calibration = horizon, calibration
        self.calibration_fraction = calibration_fraction
        self.cal_x: list[float] = []
        self.cal_y: list[float] = []
        self.platt: tuple[float, float] = (1.0, 0.0)

    def fit(self, X: pd.DataFrame, y: Any, *, groups: Any = None) -> Self:
        """Fit the booster on one part and the calibration map on held-out machines."""
        self.features = [str(c) for c in X.columns]
        Xm, ya = _matrix(X, self.features), np.asarray(y, dtype=float)
        if self.calibration == "none":
            self.booster = self._train(Xm, ya, "binary")
            return self
        fit, cal = _group_split(len(ya), groups, self.calibration_fraction, self.seed, ya)
        self.booster = self._train(Xm[fit], ya[fit], "binary")
        raw, yc = _pred(self.booster, Xm[cal]), ya[cal]
        # Honest calibration metrics: cross-fit the calibrator over two halves of the held-out
        # machines (a calibrator scored on its own fitting data looks perfect).
        g = np.asarray(groups)[cal] if groups is not None else None
        a, b = _group_split(len(yc), g, 0.5, self.seed + 1, yc)
        p = np.empty(len(yc))
        for fit_part, eval_part in ((a, b), (b, a)):
            self._fit_calibrator(raw[fit_part], yc[fit_part])
            p[eval_part] = self._calibrate(raw[eval_part])
        self.metrics.update(brier=brier_score(yc, p), ece=expected_calibration_error(yc, p))
        self._fit_calibrator(raw, yc)
        return self

    def _fit_calibrator(self, raw: np.ndarray, y: np.ndarray) -> None:
        if self.calibration == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
            self.cal_x = [float(v) for v in iso.X_thresholds_]
            self.cal_y = [float(v) for v in iso.y_thresholds_]
        else:
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=1e6).fit(_logit(raw)[:, None], y)
            self.platt = (float(lr.coef_[0, 0]), float(lr.intercept_[0]))

    def _calibrate(self, raw: np.ndarray) -> np.ndarray:
        if self.calibration == "isotonic" and self.cal_x:
            return np.asarray(np.interp(raw, self.cal_x, self.cal_y))
        if self.calibration == "platt":
            a, b = self.platt
            return 1.0 / (1.0 + np.exp(-(a * _logit(raw) + b)))
        return raw

    def predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated booster scores (for ranking metrics)."""
        assert self.booster is not None, "fit or load first"
        return _pred(self.booster, _matrix(X, self.features))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated failure probability per row."""
        return self._calibrate(self.predict_raw(X))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Same as `predict_proba`: the product acts on probabilities, not hard labels."""
        return self.predict_proba(X)

    def _state(self) -> dict[str, Any]:
        d = super()._state()
        d.update(
            horizon=self.horizon,
            calibration=self.calibration,
            calibration_fraction=self.calibration_fraction,
            cal_x=self.cal_x,
            cal_y=self.cal_y,
            platt=list(self.platt),
        )
        return d

    def _restore(self, d: dict[str, Any]) -> None:
        super()._restore(d)
        self.horizon, self.calibration = d["horizon"], d["calibration"]
        self.calibration_fraction = d["calibration_fraction"]
        self.cal_x, self.cal_y = d["cal_x"], d["cal_y"]
        self.platt = (float(d["platt"][0]), float(d["platt"][1]))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(p / (1 - p)))


def brier_score(y: Any, p: Any) -> float:
    """Mean squared error of probabilities."""
    return float(np.mean((np.asarray(p, dtype=float) - np.asarray(y, dtype=float)) ** 2))


def expected_calibration_error(y: Any, p: Any, bins: int = 10) -> float:
    """Weighted mean |observed rate - mean probability| over equal-width probability bins."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(y[m].mean() - p[m].mean())
    return float(ece)

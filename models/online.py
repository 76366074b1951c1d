"""Online (River) model: learns from the stream with delayed labels, flags anomalies and drift.

A reading is scored when it arrives and parked in its machine's pending buffer. It becomes a
training example once its label is known: positive when a failure arrives within ``horizon``
of it, negative once ``horizon`` has passed with no failure. Maintenance censors pending
readings (we never learn what would have happened). Features come from the same
`models.features` code as the batch models. The whole state pickles to bytes for
checkpointing; nothing here touches a database.
"""

from __future__ import annotations

import math
import pickle
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import pandas as pd
from river import anomaly, compose, drift, linear_model, metrics, optim, preprocessing

from models.features import FeatureSpec, FleetFeatures, RegimeNormalizer, _time_value

STATE_VERSION = 1


@dataclass
class OnlineScore:
    """What the online model says about one reading."""

    machine_id: str
    t: float
    failure_prob: float
    anomaly: float
    drift: list[str] = field(default_factory=list)
    labelled: list[tuple[float, float]] = field(default_factory=list)  # (y, p) learned now


def _clean(x: Mapping[str, float]) -> dict[str, float]:
    """River models take missing keys, not NaN: drop non-finite values."""
    return {k: v for k, v in x.items() if v is not None and math.isfinite(v)}


class OnlineFailureModel:
    """Failure-within-horizon classifier + HalfSpaceTrees + ADWIN/Page-Hinkley, all online."""

    def __init__(
        self,
        spec: FeatureSpec,
        normalizer: RegimeNormalizer | None = None,
        *,
        horizon: float = 30.0,
        seed: int = 0,
        learning_rate: float = 0.01,
        max_pending: int = 10_000,
        drift_inputs: Sequence[str] | None = None,
        anomaly_inputs: Sequence[str] | None = None,
    ) -> None:
        self.spec, self.horizon, self.seed = spec, horizon, seed
        self.fleet = FleetFeatures(spec, normalizer)
        self.clf = compose.Pipeline(
            preprocessing.StandardScaler(),
            linear_model.LogisticRegression(optimizer=optim.SGD(learning_rate), l2=1e-4),
        )
        # HalfSpaceTrees expects inputs in [0, 1]: scale first.
        self.anomaly_scaler = preprocessing.MinMaxScaler()
        self.detector = anomaly.HalfSpaceTrees(n_trees=15, height=8, window_size=250, seed=seed)
        self.error_drift = drift.ADWIN(delta=0.002)
        # Smoothed sensor levels (shortest window mean) feed the detectors: cheaper and less
        # noisy than all window statistics.
        w = min(spec.windows) if spec.windows else None
        smooth = [f"{s}__mean_{w}" if w and "mean" in spec.stats else s for s in spec.sensors]
        self.anomaly_inputs = list(anomaly_inputs) if anomaly_inputs is not None else smooth
        inputs = list(drift_inputs) if drift_inputs is not None else smooth
        self.input_drift = {f: drift.PageHinkley(threshold=50.0) for f in inputs}
        self.pending: dict[str, deque[tuple[float, dict[str, float], float]]] = {}
        self.max_pending = max_pending
        self.log_loss = metrics.LogLoss()
        self.roc_auc = metrics.ROCAUC(n_thresholds=50)
        self.n_scored = 0
        self.n_learned = 0
        self.drift_events: list[tuple[str, str, float]] = []  # (kind, name, t)
        self.features: list[str] = spec.feature_names()

    # -- streaming API -------------------------------------------------------------------
    def observe(self, reading: Mapping[str, Any]) -> OnlineScore:
        """Score a new reading, remember it for its delayed label, learn from matured ones."""
        machine = str(reading[self.spec.machine_col])
        t = _time_value(reading[self.spec.time_col])
        if reading.get(self.spec.maintenance_col):
            self.pending.pop(machine, None)  # censored: maintenance changed the outcome
        x = _clean(self.fleet.update(reading))
        p = self.predict_proba_one(x)
        a = {k: x[k] for k in self.anomaly_inputs if k in x}
        self.anomaly_scaler.learn_one(a)
        scaled = self.anomaly_scaler.transform_one(a)
        score = float(self.detector.score_one(scaled))
        self.detector.learn_one(scaled)
        fired = []
        for name, det in self.input_drift.items():
            if name in x:
                det.update(x[name])
                if det.drift_detected:
                    fired.append(f"input:{name}")
                    self.drift_events.append(("input", name, t))
        self.n_scored += 1
        buf = self.pending.setdefault(machine, deque())
        labelled = []
        while buf and buf[0][0] + self.horizon <= t:  # horizon passed without failure
            t0, x0, p0 = buf.popleft()
            labelled.append(self._learn(x0, 0.0, p0, t))
        buf.append((t, x, p))
        if len(buf) > self.max_pending:
            buf.popleft()  # bounded memory; the oldest reading stays unlabelled
        if self.error_drift.drift_detected and labelled:
            fired.append("error")
        return OnlineScore(machine, t, p, score, fired, labelled)

    def failure(self, machine_id: str, t: Any) -> list[tuple[float, float]]:
        """A failure arrived: label the machine's pending readings and learn from them."""
        tf = _time_value(t)
        out = []
        for t0, x0, p0 in self.pending.pop(str(machine_id), deque()):
            if t0 <= tf:
                out.append(self._learn(x0, 1.0 if tf - t0 <= self.horizon else 0.0, p0, tf))
        return out

    def predict_proba_one(self, x: Mapping[str, float]) -> float:
        return float(self.clf.predict_proba_one(dict(x)).get(True, 0.0))

    def _learn(self, x: dict[str, float], y: float, p: float, t: float) -> tuple[float, float]:
        self.clf.learn_one(x, bool(y))
        self.log_loss.update(bool(y), {True: p, False: 1 - p})
        self.roc_auc.update(bool(y), {True: p, False: 1 - p})
        self.error_drift.update(abs(y - p))
        if self.error_drift.drift_detected:
            self.drift_events.append(("error", "abs_error", t))
        self.n_learned += 1
        return (y, p)

    # -- Estimator protocol (batch adapters, used by the contract tests) ----------------
    def fit(self, X: pd.DataFrame, y: Any, *, groups: Any = None) -> Self:
        """Learn one row at a time from already-computed features."""
        self.features = [str(c) for c in X.columns]
        for row, label in zip(X.to_dict("records"), np.asarray(y, dtype=float), strict=True):
            self.clf.learn_one(_clean(row), bool(label))
            self.n_learned += 1
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Failure probability for each row of already-computed features (no learning)."""
        rows = X.reindex(columns=self.features).to_dict("records")
        return np.array([self.predict_proba_one(_clean(r)) for r in rows])

    def save(self) -> bytes:
        """Checkpoint the whole state (features, pending labels, models, detectors)."""
        return pickle.dumps({"version": STATE_VERSION, "model": self})

    @classmethod
    def load(cls, data: bytes) -> Self:
        """Restore a checkpoint written by `save` (trusted bytes from our own database only)."""
        d = pickle.loads(data)  # noqa: S301 - our own checkpoints, never user uploads
        if d.get("version") != STATE_VERSION or not isinstance(d["model"], cls):
            raise ValueError("not an OnlineFailureModel checkpoint of this version")
        return d["model"]  # type: ignore[no-any-return]

    def summary(self) -> dict[str, Any]:
        return {
            "scored": self.n_scored,
            "learned": self.n_learned,
            "pending": sum(len(b) for b in self.pending.values()),
            "log_loss": float(self.log_loss.get()),
            "roc_auc": float(self.roc_auc.get()),
            "drift_events": len(self.drift_events),
        }


def measure_throughput(
    model: OnlineFailureModel, readings: Iterable[Mapping[str, Any]]
) -> dict[str, float]:
    """Messages per second through `observe` (features + score + anomaly + drift + learning)."""
    scored0, learned0 = model.n_scored, model.n_learned
    start = time.perf_counter()
    for r in readings:
        model.observe(r)
    elapsed = time.perf_counter() - start
    scored, learned = model.n_scored - scored0, model.n_learned - learned0
    return {
        "messages": float(scored),
        "seconds": elapsed,
        "scored_per_s": scored / elapsed if elapsed else math.inf,
        "learned_per_s": learned / elapsed if elapsed else math.inf,
    }

"""Per-machine windowed features: one implementation for training, batch scoring and streaming.

The batch path (`compute_features`) and the streaming path (`FeatureState.update`) share the
same arithmetic: both normalise with `RegimeNormalizer._normalize`, both compute window
statistics with `_window_stats` on a NaN-padded ``(rows, sensors, window)`` block, and both
advance exponentially weighted means with `_ewm_step`. Batch simply feeds many rows at once.

Windows reset at maintenance: a reading whose ``maintenance`` flag is true starts a new
episode (time since maintenance 0, empty windows, fresh EWM state).

>>> import pandas as pd
>>> df = pd.DataFrame({"machine_id": ["m"] * 3, "cycle": [1, 2, 3], "s1": [1.0, 2.0, 4.0]})
>>> spec = FeatureSpec(sensors=("s1",), windows=(2,), ewm_spans=())
>>> compute_features(df, spec)["s1__mean_2"].tolist()
[1.0, 1.5, 3.0]
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

STATS: tuple[str, ...] = ("mean", "std", "min", "max", "slope")
TIME_SINCE_MAINTENANCE = "time_since_maintenance"
REGIME = "regime"
_SECONDS_PER_HOUR = 3600.0
_MIN_STD = 1e-8  # below this a sensor is treated as constant within a regime
_ROW_CHUNK = 4096  # rows per window block in batch mode, bounds memory


@dataclass(frozen=True)
class FeatureSpec:
    """Which columns to read and which features to compute."""

    sensors: tuple[str, ...]
    windows: tuple[int, ...] = (5, 10, 20, 30)
    ewm_spans: tuple[int, ...] = (5, 20)
    stats: tuple[str, ...] = STATS
    machine_col: str = "machine_id"
    time_col: str = "cycle"  # numeric (cycles) or datetime (converted to hours)
    maintenance_col: str = "maintenance"  # optional boolean column
    include_raw: bool = True

    @property
    def max_window(self) -> int:
        return max(self.windows) if self.windows else 1

    def feature_names(self) -> list[str]:
        """Output column names, in a fixed order."""
        names: list[str] = []
        for s in self.sensors:
            if self.include_raw:
                names.append(s)
            for w in self.windows:
                names.extend(f"{s}__{st}_{w}" for st in self.stats)
            names.extend(f"{s}__ewm_{span}" for span in self.ewm_spans)
        names.extend([TIME_SINCE_MAINTENANCE, REGIME])
        return names


@dataclass
class RegimeNormalizer:
    """Per-operating-regime z-scoring of sensors, fitted on training data only.

    Regimes come from k-means over the (standardised) operating settings, or from an explicit
    regime column. With ``n_regimes=None`` k is chosen by silhouette; data whose settings do
    not form clear clusters (single-condition data) gets one regime.
    """

    sensors: tuple[str, ...]
    settings: tuple[str, ...] = ()
    regime_col: str | None = None
    setting_center: np.ndarray = field(default_factory=lambda: np.zeros(0))
    setting_scale: np.ndarray = field(default_factory=lambda: np.ones(0))
    centroids: np.ndarray = field(default_factory=lambda: np.zeros((1, 0)))
    mean: np.ndarray = field(default_factory=lambda: np.zeros((1, 0)))
    std: np.ndarray = field(default_factory=lambda: np.ones((1, 0)))

    @classmethod
    def fit(
        cls,
        df: pd.DataFrame,
        sensors: Sequence[str],
        settings: Sequence[str] = (),
        *,
        regime_col: str | None = None,
        n_regimes: int | None = None,
        seed: int = 0,
    ) -> RegimeNormalizer:
        """Learn regimes and per-regime sensor statistics from training rows."""
        sensors, settings = tuple(sensors), tuple(settings)
        values = df.loc[:, list(sensors)].to_numpy(dtype=float)
        norm = cls(sensors=sensors, settings=settings, regime_col=regime_col)
        if regime_col is not None:
            labels = df[regime_col].fillna(0).to_numpy(dtype=int)
            k = int(labels.max()) + 1 if len(labels) else 1
        elif settings:
            s = df.loc[:, list(settings)].to_numpy(dtype=float)
            norm.setting_center = np.nanmean(s, axis=0)
            scale = np.nanstd(s, axis=0)
            norm.setting_scale = np.where(scale > _MIN_STD, scale, 1.0)
            z = np.nan_to_num((s - norm.setting_center) / norm.setting_scale)
            norm.centroids, labels = _choose_regimes(z, n_regimes, seed)
            k = len(norm.centroids)
        else:
            labels, k = np.zeros(len(df), dtype=int), 1
        mean = np.zeros((k, len(sensors)))
        std = np.ones((k, len(sensors)))
        for r in range(k):
            rows = values[labels == r]
            if len(rows):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean[r] = np.nan_to_num(np.nanmean(rows, axis=0))
                    sd = np.nan_to_num(np.nanstd(rows, axis=0))
                std[r] = np.where(sd > _MIN_STD, sd, 1.0)
        norm.mean, norm.std = mean, std
        return norm

    @property
    def n_regimes(self) -> int:
        return int(self.mean.shape[0])

    def informative_sensors(self, df: pd.DataFrame, min_std: float = 1e-3) -> tuple[str, ...]:
        """Sensors that still vary after normalisation on ``df`` (drop constant channels)."""
        z, _ = self._normalize_frame(df)
        keep = np.nanstd(z, axis=0) > min_std
        return tuple(s for s, k in zip(self.sensors, keep, strict=True) if k)

    def assign(self, settings: np.ndarray, regime: np.ndarray | None = None) -> np.ndarray:
        """Nearest-centroid regime for each row of ``settings`` (n, n_settings)."""
        if regime is not None:
            return np.asarray(np.clip(np.nan_to_num(regime).astype(int), 0, self.n_regimes - 1))
        if not self.settings or self.n_regimes == 1:
            return np.zeros(len(settings), dtype=int)
        z = np.nan_to_num((settings - self.setting_center) / self.setting_scale)
        d = ((z[:, None, :] - self.centroids[None, :, :]) ** 2).sum(axis=2)
        return np.asarray(d.argmin(axis=1), dtype=int)

    def _normalize(
        self, values: np.ndarray, settings: np.ndarray, regime: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        r = self.assign(settings, regime)
        return (values - self.mean[r]) / self.std[r], r

    def _normalize_frame(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        values = _columns(df, self.sensors)
        settings = _columns(df, self.settings)
        regime = (
            df[self.regime_col].to_numpy(dtype=float)
            if self.regime_col is not None and self.regime_col in df
            else None
        )
        return self._normalize(values, settings, regime)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly representation (for model artifacts)."""
        return {
            "sensors": list(self.sensors),
            "settings": list(self.settings),
            "regime_col": self.regime_col,
            "setting_center": self.setting_center.tolist(),
            "setting_scale": self.setting_scale.tolist(),
            "centroids": self.centroids.tolist(),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RegimeNormalizer:
        n_set = len(d["settings"])
        return cls(
            sensors=tuple(d["sensors"]),
            settings=tuple(d["settings"]),
            regime_col=d["regime_col"],
            setting_center=np.asarray(d["setting_center"], dtype=float),
            setting_scale=np.asarray(d["setting_scale"], dtype=float),
            centroids=np.asarray(d["centroids"], dtype=float).reshape(len(d["centroids"]), n_set),
            mean=np.asarray(d["mean"], dtype=float).reshape(-1, len(d["sensors"])),
            std=np.asarray(d["std"], dtype=float).reshape(-1, len(d["sensors"])),
        )


def _choose_regimes(
    z: np.ndarray, n_regimes: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    def km(k: int) -> tuple[np.ndarray, np.ndarray]:
        model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(z)
        return model.cluster_centers_, model.labels_.astype(int)

    if n_regimes is not None:
        return km(n_regimes) if n_regimes > 1 else (z.mean(axis=0, keepdims=True), _zeros(z))
    rng = np.random.default_rng(seed)
    sample = z[rng.choice(len(z), size=min(len(z), 4000), replace=False)]
    best: tuple[float, int] = (-1.0, 1)
    for k in range(2, 9):
        if len(sample) <= k:
            break
        labels = KMeans(n_clusters=k, n_init=2, random_state=seed).fit_predict(sample)
        if len(set(labels)) > 1:
            best = max(best, (float(silhouette_score(sample, labels)), k))
    # Real multi-condition data (C-MAPSS FD002/FD004) clusters with silhouette ~0.99;
    # noise around a single condition scores ~0.3-0.5.
    if best[0] < 0.8:
        return z.mean(axis=0, keepdims=True), _zeros(z)
    return km(best[1])


def _zeros(z: np.ndarray) -> np.ndarray:
    return np.zeros(len(z), dtype=int)


def _columns(df: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    """Float matrix of ``cols``; a missing column becomes NaN (tolerate absent sensors)."""
    out = np.full((len(df), len(cols)), np.nan)
    for j, c in enumerate(cols):
        if c in df:
            out[:, j] = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
    return out


def _time_values(col: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(col):
        ts = pd.to_datetime(col, utc=True)  # unit-agnostic (pandas 3 may store microseconds)
        delta = ts - pd.Timestamp(0, tz="UTC")
        return np.asarray(
            (delta / pd.Timedelta(seconds=1)).to_numpy(dtype=float) / _SECONDS_PER_HOUR
        )
    return np.asarray(col.to_numpy(dtype=float))


def _time_value(v: Any) -> float:
    if isinstance(v, int | float | np.integer | np.floating):
        return float(v)
    ts = pd.Timestamp(v)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return float(ts.timestamp() / _SECONDS_PER_HOUR)


def _window_stats(
    block: np.ndarray, times: np.ndarray, windows: Sequence[int], stats: Sequence[str]
) -> np.ndarray:
    """Window statistics for each row of a NaN-padded block.

    ``block`` is (rows, sensors, W) with the newest reading last; ``times`` is (rows, W).
    Returns (rows, sensors, len(windows) * len(stats)), ordered window-major.
    """
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for w in windows:
            y = block[:, :, -w:]
            t = times[:, None, -w:] - times[:, None, -1:]
            valid = ~np.isnan(y) & ~np.isnan(t)
            n = valid.sum(axis=2)
            yv = np.where(valid, y, 0.0)
            tv = np.where(valid, t, 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = yv.sum(axis=2) / n
                dy = np.where(valid, y - mean[:, :, None], 0.0)
                for st in stats:
                    if st == "mean":
                        out.append(mean)
                    elif st == "std":
                        out.append(np.sqrt((dy * dy).sum(axis=2) / n))
                    elif st == "min":
                        out.append(np.where(n > 0, np.where(valid, y, np.inf).min(axis=2), np.nan))
                    elif st == "max":
                        out.append(np.where(n > 0, np.where(valid, y, -np.inf).max(axis=2), np.nan))
                    elif st == "slope":
                        tmean = tv.sum(axis=2) / n
                        dt = np.where(valid, t - tmean[:, :, None], 0.0)
                        den = (dt * dt).sum(axis=2)
                        slope = (dt * dy).sum(axis=2) / den
                        out.append(np.where(den > 0, slope, 0.0))
                    else:
                        raise ValueError(f"unknown statistic {st!r}")
    return np.stack(out, axis=2) if out else np.zeros((block.shape[0], block.shape[1], 0))


def _ewm_step(m: np.ndarray, y: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """One exponentially weighted mean update; NaN readings leave the mean unchanged."""
    updated = alpha * y + (1.0 - alpha) * m
    return np.where(np.isnan(m), y, np.where(np.isnan(y), m, updated))


def _alphas(spec: FeatureSpec) -> np.ndarray:
    return np.array([2.0 / (span + 1.0) for span in spec.ewm_spans])[:, None]


def _assemble(
    spec: FeatureSpec,
    z: np.ndarray,
    win: np.ndarray,
    ewm: np.ndarray,
    tsm: np.ndarray,
    regime: np.ndarray,
) -> np.ndarray:
    """Lay out features as in `FeatureSpec.feature_names` (z: (n,S), win: (n,S,K), ewm: (n,E,S))."""
    parts = []
    for j in range(len(spec.sensors)):
        if spec.include_raw:
            parts.append(z[:, j : j + 1])
        parts.append(win[:, j, :])
        parts.append(ewm[:, :, j])
    parts.append(tsm[:, None])
    parts.append(regime[:, None].astype(float))
    return np.concatenate(parts, axis=1)


def compute_features(
    df: pd.DataFrame, spec: FeatureSpec, normalizer: RegimeNormalizer | None = None
) -> pd.DataFrame:
    """Features for every reading of ``df`` (same index, input not mutated).

    Rows are processed per machine in time order; only a reading's past is used.
    """
    names = spec.feature_names()
    if df.empty:
        return pd.DataFrame(columns=names, index=df.index, dtype=float)
    norm = normalizer or RegimeNormalizer(
        sensors=spec.sensors,
        mean=np.zeros((1, len(spec.sensors))),
        std=np.ones((1, len(spec.sensors))),
    )
    times_all = _time_values(df[spec.time_col])
    order = np.lexsort((times_all, df[spec.machine_col].astype(str).to_numpy()))
    d = df.iloc[order]
    t = times_all[order]
    z_norm, regime = norm._normalize_frame(d)
    z = _reorder_sensors(z_norm, norm.sensors, spec.sensors)
    maint = (
        d[spec.maintenance_col].fillna(False).to_numpy(dtype=bool)
        if spec.maintenance_col in d
        else np.zeros(len(d), dtype=bool)
    )
    machines = d[spec.machine_col].astype(str).to_numpy()
    new_machine = np.r_[True, machines[1:] != machines[:-1]]
    starts = np.flatnonzero(new_machine | maint)
    ends = np.r_[starts[1:], len(d)]
    result = np.empty((len(d), len(names)))
    W, S = spec.max_window, len(spec.sensors)
    alphas = _alphas(spec)
    for a, b in zip(starts, ends, strict=True):
        zp = np.vstack([np.full((W - 1, S), np.nan), z[a:b]])
        tp = np.r_[np.full(W - 1, np.nan), t[a:b]]
        win = np.empty((b - a, S, len(spec.windows) * len(spec.stats)))
        for c in range(0, b - a, _ROW_CHUNK):
            rows = min(_ROW_CHUNK, b - a - c)
            blk = np.lib.stride_tricks.sliding_window_view(zp[c : c + rows + W - 1], W, axis=0)
            tb = np.lib.stride_tricks.sliding_window_view(tp[c : c + rows + W - 1], W)
            win[c : c + rows] = _window_stats(blk, tb, spec.windows, spec.stats)
        ewm = np.empty((b - a, len(spec.ewm_spans), S))
        m = np.full((len(spec.ewm_spans), S), np.nan)
        for i in range(b - a):
            m = _ewm_step(m, z[a + i], alphas)
            ewm[i] = m
        tsm = t[a:b] - t[a]
        result[a:b] = _assemble(spec, z[a:b], win, ewm, tsm, regime[a:b])
    out = np.empty_like(result)
    out[order] = result
    return pd.DataFrame(out, index=df.index, columns=names)


def _reorder_sensors(z: np.ndarray, have: Sequence[str], want: Sequence[str]) -> np.ndarray:
    if tuple(have) == tuple(want):
        return z
    idx = {s: i for i, s in enumerate(have)}
    out = np.full((len(z), len(want)), np.nan)
    for j, s in enumerate(want):
        if s in idx:
            out[:, j] = z[:, idx[s]]
    return out


class FeatureState:
    """Streaming features for ONE machine: ``update(reading) -> dict`` per new reading."""

    def __init__(self, spec: FeatureSpec, normalizer: RegimeNormalizer | None = None) -> None:
        self.spec = spec
        S = len(spec.sensors)
        self.normalizer = normalizer or RegimeNormalizer(
            sensors=spec.sensors, mean=np.zeros((1, S)), std=np.ones((1, S))
        )
        self._values: deque[np.ndarray] = deque(maxlen=spec.max_window)
        self._times: deque[float] = deque(maxlen=spec.max_window)
        self._ewm = np.full((len(spec.ewm_spans), S), np.nan)
        self._start: float | None = None
        self._alphas = _alphas(spec)
        self._names = spec.feature_names()

    def reset(self) -> None:
        """Start a new episode (after maintenance)."""
        self._values.clear()
        self._times.clear()
        self._ewm[:] = np.nan
        self._start = None

    def update(self, reading: Mapping[str, Any]) -> dict[str, float]:
        """Add one reading (time, sensors, optional settings/regime/maintenance) -> features."""
        spec, norm = self.spec, self.normalizer
        if reading.get(spec.maintenance_col):
            self.reset()
        t = _time_value(reading[spec.time_col])
        values = np.array([[_num(reading.get(s)) for s in norm.sensors]])
        settings = np.array([[_num(reading.get(s)) for s in norm.settings]])
        regime_in = (
            np.array([_num(reading.get(norm.regime_col))])
            if norm.regime_col is not None and norm.regime_col in reading
            else None
        )
        z_norm, regime = norm._normalize(values, settings, regime_in)
        z = _reorder_sensors(z_norm, norm.sensors, spec.sensors)
        if self._start is None:
            self._start = t
        self._values.append(z[0])
        self._times.append(t)
        W, S = spec.max_window, len(spec.sensors)
        pad = W - len(self._values)
        blk = np.vstack([np.full((pad, S), np.nan), np.array(self._values)]).T[None, :, :]
        tb = np.r_[np.full(pad, np.nan), np.array(self._times)][None, :]
        win = _window_stats(blk, tb, spec.windows, spec.stats)
        self._ewm = _ewm_step(self._ewm, z[0], self._alphas)
        row = _assemble(spec, z, win, self._ewm[None], np.array([t - self._start]), regime)
        return dict(zip(self._names, row[0].tolist(), strict=True))


class FleetFeatures:
    """Streaming features for many machines, keyed by the spec's machine column."""

    def __init__(self, spec: FeatureSpec, normalizer: RegimeNormalizer | None = None) -> None:
        self.spec, self.normalizer = spec, normalizer
        self.states: dict[str, FeatureState] = {}

    def update(self, reading: Mapping[str, Any]) -> dict[str, float]:
        key = str(reading[self.spec.machine_col])
        state = self.states.get(key)
        if state is None:
            state = self.states[key] = FeatureState(self.spec, self.normalizer)
        return state.update(reading)


def _num(v: Any) -> float:
    try:
        return float(v) if v is not None else np.nan
    except (TypeError, ValueError):
        return np.nan

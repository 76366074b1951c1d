"""Streaming detector: every new reading of every machine scored against its own running baseline.

Pure numpy, no I/O. Per (machine, operating regime) and sensor an exponentially weighted mean and
variance are kept and updated incrementally, one reading at a time, so a pass never re-reads a
window. Readings are processed in *rounds* (the first new reading of every machine, then the second,
...), each round one vectorised update across all machines of a type, which keeps the per-machine
order exact.

Each reading gets a data-quality flag (``missing`` when most sensors are absent, ``warmup`` while
the baseline has seen fewer than ``warmup`` readings) and a score: ``z`` is the largest absolute
deviation of a sensor from its baseline in baseline standard deviations, mapped to a probability
with a logistic (``z0`` -> 0.5). The baseline does not learn from readings it finds anomalous, so a
fault that persists keeps scoring high until the machine is repaired; after ``relearn_after``
anomalous readings in a row it starts over (a new normal, e.g. after a part was replaced).

:func:`policy_relevant` drops the scores that cannot change the alert policy's decision
(`models.policy.step`): after a score below the low threshold, further low scores are no-ops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class StreamConfig:
    alpha: float = 0.02  # EWMA weight of a new reading (~50 readings of memory)
    warmup: int = 30  # readings before a baseline scores
    z0: float = 6.0  # z of probability 0.5
    z_scale: float = 0.5  # logistic width in z
    z_learn: float = 4.0  # sensors this far out do not update the baseline
    eps_frac: float = 1e-3  # noise floor: this share of the sensor's physical range
    relearn_after: int = 900  # anomalous readings in a row before the baseline starts over
    missing_share: float = 0.5  # more sensors missing than this -> data quality 'missing'


@dataclass(slots=True)
class TypeBaselines:
    """Baselines of the machines of one type (one row per machine and regime)."""

    sensors: tuple[str, ...]
    ranges: np.ndarray  # (s,) physical range per sensor, for the noise floor
    slots: dict[tuple[str, int], int] = field(default_factory=dict)
    mean: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    var: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    count: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    anomalous_run: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        s = len(self.sensors)
        if self.mean.shape != (len(self.slots), s):
            self.mean = np.zeros((len(self.slots), s))
            self.var = np.zeros((len(self.slots), s))

    def slot_ids(self, machines: Sequence[str], regimes: Sequence[int]) -> np.ndarray:
        """Row of each (machine, regime), adding rows for new ones."""
        out = np.empty(len(machines), dtype=np.int64)
        for i, key in enumerate(zip(machines, regimes, strict=True)):
            j = self.slots.get(key)
            if j is None:
                j = self.slots[key] = len(self.slots)
            out[i] = j
        grow = len(self.slots) - len(self.count)
        if grow > 0:
            s = len(self.sensors)
            self.mean = np.vstack([self.mean, np.zeros((grow, s))])
            self.var = np.vstack([self.var, np.zeros((grow, s))])
            self.count = np.concatenate([self.count, np.zeros(grow, dtype=np.int64)])
            self.anomalous_run = np.concatenate(
                [self.anomalous_run, np.zeros(grow, dtype=np.int64)]
            )
        return out


@dataclass(frozen=True, slots=True)
class StreamScores:
    prob: np.ndarray  # (n,) probability-like score
    z: np.ndarray  # (n,) largest sensor deviation
    top: np.ndarray  # (n, 3) sensor indices, most deviant first
    zs: np.ndarray  # (n, s) per-sensor deviation
    quality: np.ndarray  # (n,) 'ok' | 'warmup' | 'missing'


def rounds(machines: Sequence[str]) -> np.ndarray:
    """For readings sorted by (machine, seq): 0 for a machine's first, 1 for its second, ..."""
    out = np.zeros(len(machines), dtype=np.int64)
    for i in range(1, len(machines)):
        if machines[i] == machines[i - 1]:
            out[i] = out[i - 1] + 1
    return out


def score_and_learn(
    b: TypeBaselines,
    machines: Sequence[str],
    regimes: Sequence[int],
    x: np.ndarray,
    cfg: StreamConfig = StreamConfig(),
) -> StreamScores:
    """Score readings (sorted by machine, then seq; NaN = missing) and update the baselines."""
    n, s = x.shape
    prob, zmax = np.zeros(n), np.zeros(n)
    zs = np.zeros((n, s))
    quality = np.full(n, "ok", dtype=object)
    slot = b.slot_ids(machines, regimes)
    r = rounds(machines)
    floor = (cfg.eps_frac * b.ranges) ** 2
    for k in range(int(r.max()) + 1 if n else 0):
        idx = np.flatnonzero(r == k)
        j = slot[idx]
        xi = x[idx]
        present = ~np.isnan(xi)
        mean, var = b.mean[j], b.var[j]
        z = np.where(present, np.abs(xi - mean) / np.sqrt(var + floor), 0.0)
        warm = b.count[j] >= cfg.warmup
        z = np.where(warm[:, None], z, 0.0)
        zi = z.max(axis=1) if s else np.zeros(len(idx))
        missing = present.sum(axis=1) < (1 - cfg.missing_share) * s
        zs[idx], zmax[idx] = z, zi
        prob[idx] = 1.0 / (1.0 + np.exp(-(zi - cfg.z0) / cfg.z_scale))
        quality[idx] = np.where(missing, "missing", np.where(warm, "ok", "warmup"))
        # learn: sensors present and not anomalous (all of them during warm-up)
        anomalous = zi >= cfg.z_learn
        run = np.where(anomalous, b.anomalous_run[j] + 1, 0)
        restart = run >= cfg.relearn_after
        learn = present & ((z < cfg.z_learn) | ~warm[:, None])
        a = np.maximum(cfg.alpha, 1.0 / (b.count[j] + 1.0))[:, None]
        d = np.where(learn, xi - mean, 0.0)
        new_mean = mean + np.where(learn, a * d, 0.0)
        new_var = np.where(learn, (1 - a) * (var + a * d * d), var)
        new_count = b.count[j] + learn.any(axis=1)
        b.mean[j] = np.where(restart[:, None], np.nan_to_num(xi, nan=0.0), new_mean)
        b.var[j] = np.where(restart[:, None], 0.0, new_var)
        b.count[j] = np.where(restart, 0, new_count)
        b.anomalous_run[j] = np.where(restart, 0, run)
    top = np.argsort(-zs, axis=1)[:, :3] if s else np.zeros((n, 0), dtype=np.int64)
    return StreamScores(prob, zmax, top, zs, quality)


def policy_relevant(
    machines: Sequence[str], prob: np.ndarray, ok: np.ndarray, low: float, low_seen: dict[str, bool]
) -> np.ndarray:
    """Mask of the scores the alert policy must see (sorted by machine, then time).

    `models.policy.step` maps every score below ``low`` to the same state (no run, inactive), so
    after one such score the following ones change nothing until a score at or above ``low``.
    ``low_seen`` carries, per machine, whether its last relevant score was below ``low``; it is
    updated in place. Scores that are not ``ok`` never reach the policy and are dropped.
    """
    keep = np.zeros(len(prob), dtype=bool)
    for i, m in enumerate(machines):
        if not ok[i]:
            continue
        below = bool(prob[i] < low)
        if below and low_seen.get(m, False):
            continue
        keep[i] = True
        low_seen[m] = below
    return keep

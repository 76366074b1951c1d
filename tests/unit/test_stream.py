"""The streaming detector (pure): incremental baselines, abrupt faults, and the policy filter."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from forewarn.partitions import assignment, owned_by, partition_of, split
from models import policy
from models.stream import StreamConfig, TypeBaselines, policy_relevant, score_and_learn


def _baselines() -> TypeBaselines:
    return TypeBaselines(("a", "b"), np.array([100.0, 100.0]))


def test_abrupt_step_scores_high_and_persists_while_noise_stays_low() -> None:
    rng = np.random.default_rng(0)
    b = _baselines()
    cfg = StreamConfig()
    n = 200
    x = np.column_stack([50 + rng.standard_normal(n), 20 + 0.5 * rng.standard_normal(n)])
    x[150:, 1] += 15.0  # a step of 30 sigmas on sensor b
    probs, zs = [], []
    for i in range(n):  # one reading per pass, as the live stream does
        s = score_and_learn(b, ["m1"], [0], x[i : i + 1], cfg)
        probs.append(s.prob[0])
        zs.append(s.quality[0])
    probs_a = np.array(probs)
    assert zs[: cfg.warmup] == ["warmup"] * cfg.warmup
    assert probs_a[cfg.warmup : 150].max() < 0.3  # noise alone never reaches the low threshold
    assert probs_a[150:].min() > 0.99  # the fault keeps scoring: the baseline does not learn it


def test_rounds_keep_each_machines_order_across_one_batch() -> None:
    """Scoring many readings in one call equals scoring them one pass at a time."""
    rng = np.random.default_rng(1)
    x = 10 + rng.standard_normal((120, 2))
    machines = ["m1"] * 60 + ["m2"] * 60
    one = _baselines()
    batch = score_and_learn(one, machines, [0] * 120, x)
    other = _baselines()
    single = [
        score_and_learn(other, [machines[i]], [0], x[i : i + 1]).prob[0]
        for i in list(range(0, 120, 60)) + [j for k in range(1, 60) for j in (k, 60 + k)]
    ]
    order = [0, 60] + [j for k in range(1, 60) for j in (k, 60 + k)]
    assert np.allclose(batch.prob[order], single)
    assert np.allclose(one.mean, other.mean) and np.allclose(one.var, other.var)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=60), st.integers(1, 4))
def test_dropped_scores_never_change_a_policy_decision(probs: list[float], k: int) -> None:
    th = policy.Thresholds(high=0.6, low=0.3, k=k)
    arr = np.array(probs)
    keep = policy_relevant(["m"] * len(arr), arr, np.ones(len(arr), bool), th.low, {})

    def decisions(ps: list[float]) -> list[tuple[float, str]]:
        s, out = policy.HysteresisState(), []
        for p in ps:
            s, d = policy.step(s, p, th)
            if d != "none":
                out.append((p, d))
        return out

    assert decisions(probs) == decisions([p for p, kept in zip(probs, keep, strict=True) if kept])


def test_partitions_are_stable_and_spread_over_workers() -> None:
    ids = [f"m{i}" for i in range(1000)]
    parts = split(ids, 16)
    assert sum(len(v) for v in parts.values()) == 1000
    assert min(len(v) for v in parts.values()) > 30  # crc32 spreads them
    assert partition_of("m7", 16) == partition_of("m7", 16)
    a = assignment(["w2", "w1", "w3"], 16)
    assert sorted(a.values()).count("w1") in (5, 6)
    assert sorted(
        owned_by("w1", ["w1", "w2", "w3"], 16)
        + owned_by("w2", ["w1", "w2", "w3"], 16)
        + owned_by("w3", ["w1", "w2", "w3"], 16)
    ) == list(range(16))

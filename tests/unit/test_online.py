"""Online model: delayed labels, censoring at maintenance, checkpoint/restore continuity."""

from __future__ import annotations

import numpy as np

from models.features import FeatureSpec
from models.online import OnlineFailureModel, measure_throughput

SPEC = FeatureSpec(sensors=("s1", "s2"), windows=(3, 6), ewm_spans=(4,))


def _readings(machine: str, n: int, start: int = 0, seed: int = 0) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "machine_id": machine,
            "cycle": start + c,
            "s1": c * 0.1 + rng.normal(),
            "s2": rng.normal(),
        }
        for c in range(n)
    ]


def test_labels_arrive_after_the_horizon_or_at_failure() -> None:
    m = OnlineFailureModel(SPEC, horizon=5)
    scores = [m.observe(r) for r in _readings("a", 10)]
    # readings 0..4 matured (t + 5 <= 9) as negatives; 5..9 still pending
    assert sum(len(s.labelled) for s in scores) == 5
    assert all(y == 0.0 for s in scores for y, _ in s.labelled)
    labelled = m.failure("a", 11)
    assert [y for y, _ in labelled] == [0.0, 1.0, 1.0, 1.0, 1.0]  # 11-5=6 > 5, the rest within
    assert m.n_learned == 10 and m.summary()["pending"] == 0


def test_maintenance_censors_pending_readings() -> None:
    m = OnlineFailureModel(SPEC, horizon=5)
    for r in _readings("a", 4):
        m.observe(r)
    m.observe({"machine_id": "a", "cycle": 4, "s1": 0.0, "s2": 0.0, "maintenance": True})
    assert m.summary()["pending"] == 1 and m.n_learned == 0
    p_after = m.pending["a"][0][2]
    assert m.failure("a", 6) == [(1.0, p_after)]  # only the post-maintenance reading
    assert m.n_learned == 1


def test_checkpoint_restore_continues_exactly() -> None:
    stream = sorted(
        _readings("a", 60) + _readings("b", 60, seed=1), key=lambda r: (r["cycle"], r["machine_id"])
    )
    straight = OnlineFailureModel(SPEC, horizon=5, seed=3)
    resumed = OnlineFailureModel(SPEC, horizon=5, seed=3)
    for r in stream[:70]:
        straight.observe(r)
        resumed.observe(r)
    straight.failure("a", 35)
    resumed.failure("a", 35)
    resumed = OnlineFailureModel.load(resumed.save())  # "restart"
    a = [straight.observe(r) for r in stream[70:]]
    b = [resumed.observe(r) for r in stream[70:]]
    assert [(s.failure_prob, s.anomaly, s.labelled) for s in a] == [
        (s.failure_prob, s.anomaly, s.labelled) for s in b
    ]
    assert straight.summary() == resumed.summary()


def test_anomaly_scores_and_probabilities_are_bounded() -> None:
    m = OnlineFailureModel(SPEC, horizon=5)
    out = [m.observe(r) for r in _readings("a", 50)]
    assert all(0.0 <= s.failure_prob <= 1.0 and 0.0 <= s.anomaly <= 1.0 for s in out)


def test_throughput_counts_every_message() -> None:
    m = OnlineFailureModel(SPEC, horizon=5)
    res = measure_throughput(m, _readings("a", 200))
    assert res["messages"] == 200 and res["scored_per_s"] > 0
    assert m.n_learned == 195

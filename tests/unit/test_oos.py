"""Out-of-sample ROI: rolling origin never scores on what it tuned on; intervals; the proposal rule."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forewarn.assets import Costs
from models.oos import beats_both, proposed_policy, rolling_origin
from models.policy import AlertPolicy
from models.roi import BacktestConfig, build_lives
from tests.unit.test_roi import C, at, failures, hours0

MACHINES = 12
HOURS = 2000
# a coarse threshold grid keeps the sweep quick; the rule is the same
CFG = BacktestConfig(
    horizon_h=48, min_lead_h=4, k=3, cooldown_h=24, thresholds=(0.2, 0.4, 0.5, 0.6, 0.8)
)


def plant(seed: int) -> tuple[pd.DataFrame, dict[str, Costs]]:
    """Machines failing every 150-350 h (12 h repairs) over 2,000 h."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(MACHINES):
        t = float(rng.integers(20, 200))
        while t < HOURS:
            rows.append((f"m{i}", t))
            t += 12 + float(rng.integers(150, 350))
    return failures(rows), {f"m{i}": C for i in range(MACHINES)}


def hourly(
    f: pd.DataFrame, costs: dict[str, Costs], warn_h: float, noise: float, seed: int
) -> pd.DataFrame:
    """A score per hour: high in the last ``warn_h`` hours before a failure, plus noise."""
    rng = np.random.default_rng(seed)
    lives = build_lives(f, costs, (at(0), at(HOURS)))
    parts = []
    for life in lives.itertuples():
        hs = np.arange(np.ceil(life.start - hours0()), np.floor(life.end - hours0()) + 1)
        near = life.failed & (life.end - hours0() - hs <= warn_h)
        p = np.clip(np.where(near, 0.8, 0.1) + rng.normal(0, noise, len(hs)), 0, 1)
        parts.append(
            pd.DataFrame(
                {"machine_id": life.machine, "ts": [at(float(h)) for h in hs], "failure_prob": p}
            )
        )
    return pd.concat(parts, ignore_index=True)


def test_informative_scores_save_out_of_sample_and_folds_never_peek() -> None:
    f, costs = plant(1)
    s = hourly(f, costs, warn_h=30, noise=0.05, seed=2)
    _, _, rep = rolling_origin(f, s, costs, (at(0), at(HOURS)), config=CFG, segments=4, draws=300)
    for fold in rep["folds"]:
        assert fold["tuned_on"][1] <= fold["scored_on"][0]  # tuned only on what came before
        assert fold["tuned_on"][0] == rep["folds"][0]["tuned_on"][0]  # expanding window
    oos = rep["out_of_sample"]
    assert oos["savings_vs_run_to_failure"] > 0 and oos["savings_vs_fixed_interval"] > 0
    for key in ("run_to_failure", "fixed_interval"):
        assert oos[f"ci_low_vs_{key}"] <= oos[f"savings_vs_{key}"] <= oos[f"ci_high_vs_{key}"]
    # out of sample covers the last three of four pieces: fewer failures than in sample
    assert 0 < oos["failures"] < rep["in_sample"]["failures"]
    pol = proposed_policy(CFG, rep, AlertPolicy())
    assert pol is not None and pol.for_type("all").high == rep["tuned"]["thresholds_by_type"]["all"]


def test_useless_scores_propose_nothing() -> None:
    f, _ = plant(3)
    # with cheap inspections, alerting at random every cooldown is a sound inspection round and
    # does catch most failures; with costly ones noise must not look like a policy
    dear = Costs(1000.0, 5000.0, 800.0, 6000.0, 12.0, 2.0)
    costs = {f"m{i}": dear for i in range(MACHINES)}
    rng = np.random.default_rng(4)
    s = hourly(f, costs, warn_h=0, noise=0.0, seed=5)
    s["failure_prob"] = rng.random(len(s))
    _, _, rep = rolling_origin(f, s, costs, (at(0), at(HOURS)), config=CFG, segments=4, draws=200)
    # tuned in sample, noise can look useful; out of sample it must not beat both baselines
    assert not beats_both(rep["out_of_sample"])
    assert proposed_policy(CFG, rep, AlertPolicy()) is None


def test_same_information_for_both_baselines() -> None:
    f, costs = plant(6)
    s = hourly(f, costs, warn_h=30, noise=0.05, seed=7)
    _, _, rep = rolling_origin(f, s, costs, (at(0), at(HOURS)), config=CFG, segments=3, draws=100)
    first = rep["folds"][0]
    # both parameters of a fold come from the same tuning window
    assert set(first["thresholds_by_type"]) == set(first["fixed_interval_h"]) == {"all"}

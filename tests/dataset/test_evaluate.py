"""Real-data evaluation against the issue's targets (needs ../shared/data or FOREWARN_DATA_DIR).

Each figure is computed once per session; the asserted thresholds are the targets, and the
measured values are printed (``pytest -s``) so a regression shows by how much.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from models.runners.datasets import default_data_dir

pytestmark = pytest.mark.dataset

DATA = default_data_dir()
CMAPSS = DATA / "cmapss"
AI4I = DATA / "ai4i2020" / "ai4i2020.csv"


def _need(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"dataset not found at {path}: set FOREWARN_DATA_DIR to ../shared/data")


@pytest.fixture(scope="module")
def fd001() -> dict[str, Any]:
    _need(CMAPSS / "train_FD001.txt.gz")
    from models.runners.evaluate import run_cmapss

    return run_cmapss(CMAPSS, "FD001")


@pytest.fixture(scope="module")
def fd003() -> dict[str, Any]:
    _need(CMAPSS / "train_FD003.txt.gz")
    from models.runners.evaluate import run_cmapss

    return run_cmapss(CMAPSS, "FD003")


def test_cmapss_fd001_meets_targets(fd001: dict[str, Any]) -> None:
    print(fd001)
    assert fd001["units"] == 100
    assert fd001["rmse_capped"] <= 13.0
    assert fd001["score_capped"] <= 350
    assert fd001["rmse_raw"] <= 15.0
    assert 0.6 <= fd001["interval_coverage_capped"] <= 1.0  # nominal 80% interval


def test_cmapss_fd003_meets_target(fd003: dict[str, Any]) -> None:
    print(fd003)
    assert fd003["units"] == 100
    assert fd003["rmse_capped"] <= 13.5


def test_ai4i_meets_targets() -> None:
    _need(AI4I)
    from models.runners.evaluate import run_ai4i

    m = run_ai4i(AI4I)
    print(m)
    assert m["nested_cv"] is True and m["folds"] == 15
    assert sum(m["chosen_params"].values()) == 15  # one choice per outer training fold
    # the product's bar (BRIEF: ROC-AUC >= 0.97); nested CV measured 0.977 on 2026-12-01
    assert m["roc_auc"] >= 0.97
    assert m["f1"] >= 0.85
    assert m["precision"] > 0.85 and m["recall"] > 0.75


def test_online_model_learns_from_delayed_labels_on_a_replay() -> None:
    _need(CMAPSS / "train_FD001.txt.gz")
    from models.runners.evaluate import prequential_cmapss

    m = prequential_cmapss(CMAPSS, "FD001", max_units=30)
    print(m)
    assert m["labelled"] == m["readings"]  # every reading eventually got its label
    assert m["roc_auc"] >= 0.7
    assert m["roc_auc_second_half"] >= m["roc_auc"] - 0.02  # learning, not decaying


def test_six_operating_conditions_plain_text_files(tmp_path: Path) -> None:
    """FD002/FD004-style data: FD001 re-expressed under six operating conditions.

    Each row gets one of six (settings, sensor gain/offset) conditions and the files are
    written uncompressed; regime normalisation learned from train must undo it.
    """
    _need(CMAPSS / "train_FD001.txt.gz")
    import numpy as np

    from models.runners.datasets import CMAPSS_SENSORS, CMAPSS_SETTINGS, load_cmapss
    from models.runners.evaluate import run_cmapss

    data = load_cmapss(CMAPSS, "FD001")
    rng = np.random.default_rng(0)
    centers = np.array(
        [
            [0, 0, 100],
            [10, 0.25, 100],
            [20, 0.7, 100],
            [25, 0.62, 60],
            [35, 0.84, 100],
            [42, 0.84, 100],
        ],
        dtype=float,
    )
    gains = rng.uniform(0.8, 1.2, size=(6, len(CMAPSS_SENSORS)))
    offsets = rng.uniform(-50, 50, size=(6, len(CMAPSS_SENSORS)))

    def six(df):  # type: ignore[no-untyped-def]
        df = df[df["machine_id"] <= 50].copy()
        r = rng.integers(0, 6, size=len(df))
        df[list(CMAPSS_SETTINGS)] = centers[r] + rng.normal(scale=0.002, size=(len(df), 3))
        df[list(CMAPSS_SENSORS)] = df[list(CMAPSS_SENSORS)].to_numpy() * gains[r] + offsets[r]
        return df

    for name, df in (("train", six(data.train)), ("test", six(data.test))):
        df.to_csv(tmp_path / f"{name}_FD002.txt", sep=" ", header=False, index=False)
    (tmp_path / "RUL_FD002.txt").write_text(
        "\n".join(str(v) for v in data.test_rul.loc[1:50].to_numpy()) + "\n"
    )
    m = run_cmapss(tmp_path, "FD002", classifier=False)
    print(m)
    assert m["regimes"] == 6 and m["units"] == 50
    assert m["rmse_capped"] <= 16.0

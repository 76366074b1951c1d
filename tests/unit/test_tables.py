"""Dashboard tables as people read them: no None, nan or NaT; times in UTC; headings in words."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from dashboard.tables import LABELS, WIDE, config, readable


def test_missing_values_never_reach_the_grid_as_none_nan_or_nat() -> None:
    df = pd.DataFrame(
        {
            "id": [1, 2],
            "last_login_at": [datetime(2026, 3, 4, 17, 5, 9, tzinfo=UTC), None],
            "digest_hour": [7.0, np.nan],
            "mode": ["tool_wear", None],
            "target": ["ops@plant.test", None],
            "failure_prob": [0.61, np.nan],
            "active": [True, False],
        }
    )
    out = readable(df)
    assert list(out["last_login_at"]) == ["2026-03-04 17:05", "–"]
    assert list(out["digest_hour"]) == [7, "–"]
    assert list(out["mode"]) == ["tool wear", "–"]
    assert list(out["target"]) == ["ops@plant.test", "–"]
    assert out["failure_prob"].iloc[0] == 0.61  # a bar: NaN stays a number (an empty bar)
    assert list(out["active"]) == [True, False]
    shown = " ".join(str(v) for v in out.drop(columns="failure_prob").to_numpy().ravel())
    for raw in ("None", "nan", "NaT"):
        assert raw not in shown
    assert df["digest_hour"].isna().iloc[1]  # the loader's frame is left alone


def test_a_datetime_column_with_gaps_reads_in_utc() -> None:
    s = pd.Series(pd.to_datetime(["2026-03-04T17:05:00+01:00", None], utc=True))
    assert list(readable(pd.DataFrame({"ts": s}))["ts"]) == ["2026-03-04 16:05", "–"]


def test_headings_are_words_and_long_text_is_wide() -> None:
    cols = ["id", "recommended_action", "created_at", "failure_prob", "some_new_field"]
    cfg = config(cols)
    assert cfg["recommended_action"]["label"] == LABELS["recommended_action"]
    assert cfg["recommended_action"]["width"] == "large" and "recommended_action" in WIDE
    assert cfg["created_at"]["label"] == "Raised (UTC)"
    assert cfg["some_new_field"]["label"] == "Some new field"  # never the raw snake_case name
    assert cfg["failure_prob"]["type_config"]["type"] == "progress"

"""The Models page's line-up: champion, challenger and online model per machine type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from dashboard.lineup import calibration_lines, family, lineup, metric_lines, no_challenger, when

T0 = datetime(2026, 3, 4, 17, 0, tzinfo=UTC)


def _versions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": ["pm-cnc", "pm-cnc", "pm-cnc", "pm-pump"],
            "version": [3, 2, 1, 1],
            "aliases": [["challenger"], ["champion"], [], ["champion"]],
            "metrics": [{"roc_auc": 0.97}, {"roc_auc": 0.95, "brier": 0.07}, {}, {}],
            "train_to": [T0, T0 - timedelta(days=1), T0 - timedelta(days=2), T0],
        }
    )


def test_families_follow_the_registry_and_checkpoint_names() -> None:
    assert family("pm-cnc") == "cnc"
    assert family("online-cnc") == "cnc"
    assert family("online-cnc-p12") == "cnc"
    assert family("online-heat-pump") == "heat-pump"
    assert family("failure-lgbm") == "failure-lgbm"


def test_lineup_puts_each_role_beside_the_others() -> None:
    checkpoints = pd.DataFrame(
        {
            "name": ["online-cnc-p0", "online-cnc-p1", "online-pump"],
            "position": [
                {
                    "t_h": T0.timestamp() / 3600,
                    "scored": 300,
                    "learned": 200,
                    "pending": 10,
                    "roc_auc": 0.9,
                    "log_loss": 0.2,
                    "drift_events": 1,
                },
                {
                    "t_h": T0.timestamp() / 3600 - 2,
                    "scored": 100,
                    "learned": 50,
                    "pending": 5,
                    "roc_auc": 0.7,
                    "log_loss": 0.4,
                    "drift_events": 0,
                },
                {"t_h": T0.timestamp() / 3600, "scored": 10},
            ],
        }  # fmt: skip
    )
    out = lineup(_versions(), checkpoints)
    assert list(out) == ["cnc", "pump"]
    cnc, pump = out["cnc"], out["pump"]
    assert (cnc["champion"]["version"], cnc["challenger"]["version"]) == (2, 3)
    assert pump["challenger"] is None and pump["champion"]["version"] == 1
    online = cnc["online"]
    assert (online["partitions"], online["scored"], online["learned"], online["pending"]) == (
        2, 400, 250, 15,
    )  # fmt: skip
    assert abs(online["roc_auc"] - (0.9 * 300 + 0.7 * 100) / 400) < 1e-12  # weighted by use
    assert online["learned_to"] == T0 and online["drift_events"] == 1
    assert online["label"] == "online-cnc"
    assert out["pump"]["online"]["roc_auc"] is None  # not yet any labelled prediction


def test_no_challenger_says_when_the_retrain_loop_would_train_one() -> None:
    champion = _versions().iloc[1].to_dict()
    text = no_challenger(champion, retrain_every_h=24)
    assert text.startswith("No challenger yet")
    assert f"(from {when(T0)})" in text  # trained on data to T0 - 1 day, due 24 plant hours later
    early = no_challenger(champion, retrain_every_h=24, now=T0 - timedelta(hours=1))
    assert f"(from {when(T0)})" in early
    late = no_challenger(champion, retrain_every_h=24, now=T0 + timedelta(hours=1))
    assert f"(due since {when(T0)}: is `forewarn retrain` running?)" in late
    assert "there is no champion" in no_challenger(None, retrain_every_h=24)


def test_lines_show_only_what_a_version_has_never_none_or_nan() -> None:
    assert metric_lines({"roc_auc": 0.951, "brier": float("nan"), "note": "x", "ok": True}) == [
        ("ROC-AUC", "0.951")
    ]
    assert metric_lines(None) == []
    assert calibration_lines({"n": 0, "brier": None, "ece": None}) == [
        ("Live calibration", "no labelled predictions yet")
    ]
    assert calibration_lines({"n": 1200, "brier": 0.081, "ece": 0.02})[0] == (
        "Labelled live predictions", "1,200",
    )  # fmt: skip
    for missing in (None, float("nan"), pd.NaT):
        assert when(missing) == "–"
    assert when(pd.Timestamp("2026-03-04 17:00")) == "2026-03-04 17:00 UTC"

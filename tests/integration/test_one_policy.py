"""One policy: the alert engine and the backtest raise the same alerts from the same predictions."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from psycopg.types.json import Jsonb
from typer.testing import CliRunner

from forewarn.cli import app
from forewarn.storage.policies import promote_policy, save_policy
from models.lives import backtest_alerts
from models.policy import AlertPolicy, PolicySet
from models.runners.alerting import run_alerting_once
from models.runners.backtest import load_scores
from tests.factories import T0
from tests.fixtures.app import ApiEnv

HOURS = 240
PASSES = 7  # the engine sees the predictions in this many passes (its state carried between them)


def test_alert_engine_and_backtest_raise_the_same_alerts_under_one_policy(api_env: ApiEnv) -> None:
    env = api_env
    pol = AlertPolicy(high=0.55, low=0.25, k=2, cooldown_h=6.0, horizon_h=48.0)
    rng = np.random.default_rng(15)
    machines = ["s1-pump-000", "s1-pump-001", "s1-pump-002"]
    # a bounded random walk per machine, one champion score an hour: many crossings both ways
    probs = {m: np.clip(0.4 + np.cumsum(rng.normal(0, 0.12, HOURS)), 0, 1) for m in machines}
    with env.conn() as conn:
        version = save_policy(conn, PolicySet(default=pol).to_dict(), source="manual")
        promote_policy(conn, version, actor="test")
        conn.commit()
        cuts = [int(x) for x in np.linspace(0, HOURS, PASSES + 1)]
        # each pass sees a day or more of scores at once: none of them is stale for this test
        models = env.settings.models.model_copy(update={"stale_after_s": 1e9})
        settings = env.settings.model_copy(update={"models": models})
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            for m in machines:
                for h in range(a, b):
                    conn.execute(
                        "insert into predictions (machine_id, ts, role, failure_prob, mode,"
                        " contributions, data_quality) values (%s, %s, 'champion', %s, 'bearing',"
                        " %s, 'ok')",
                        (m, T0 + timedelta(hours=h), float(probs[m][h]), Jsonb({})),
                    )
            run_alerting_once(conn, settings, T0 + timedelta(hours=b - 1, minutes=5))
        engine = sorted(
            (r[0], r[1].timestamp() / 3600.0)
            for r in conn.execute(
                "select machine_id, raised_by_ts from alerts where policy_version = %s", (version,)
            )
        )
        n_alerts = conn.execute("select count(*) from alerts").fetchone()
        window = (T0, T0 + timedelta(hours=HOURS))
        scores = load_scores(conn, *window, available_after_h=0.0)
    backtest = backtest_alerts(scores, pol, window, machines)
    assert n_alerts == (len(engine),)  # every alert records the policy version that raised it
    assert len(engine) >= 6, "the walk should cross the thresholds several times"
    assert engine == backtest
    # and the oracle: the policy written out by hand over the same scores
    expected = []
    for m in machines:
        n, active, quiet = 0, False, -np.inf
        for h, p in enumerate(probs[m]):
            t = (pd.Timestamp(T0) + pd.Timedelta(hours=h)).timestamp() / 3600.0
            if p >= pol.high:
                n += 1
                if not active and n >= pol.k and t >= quiet:
                    active, quiet = True, t + pol.cooldown_h
                    expected.append((m, t))
            elif p < pol.low:
                n, active = 0, False
            else:
                n = 0
    assert sorted(expected) == engine


def test_policy_and_models_show_print_the_live_version_and_the_calibration(
    api_env: ApiEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = api_env
    monkeypatch.setenv("FOREWARN_DB__URL", env.url)
    with env.conn() as conn:
        version = save_policy(
            conn, PolicySet(default=AlertPolicy(high=0.7, low=0.2)).to_dict(), source="manual"
        )
        conn.commit()
        # two labelled champion predictions: 0.9 followed by a failure, 0.2 not
        for h, p in ((0, 0.9), (100, 0.2)):
            conn.execute(
                "insert into predictions (machine_id, ts, role, failure_prob) values"
                " ('s1-pump-000', %s, 'champion', %s)",
                (T0 + timedelta(hours=h), p),
            )
        conn.execute(
            "insert into machine_events (machine_id, seq, ts, event, mode) values"
            " ('s1-pump-000', 1, %s, 'failure', 'bearing'),"
            " ('s1-pump-000', 2, %s, 'failure', 'bearing')",
            (T0 + timedelta(hours=10), T0 + timedelta(hours=400)),
        )
    runner = CliRunner()
    shown = json.loads(runner.invoke(app, ["policy", "show", "--json"]).output)
    assert shown["version"] is None and shown["source"] == "settings"
    promoted = runner.invoke(app, ["policy", "promote", str(version), "--actor", "tester"])
    assert promoted.exit_code == 0, promoted.output
    shown = json.loads(runner.invoke(app, ["policy", "show", "--json"]).output)
    assert shown["version"] == version and shown["promoted_by"] == "tester"
    assert shown["policy"]["default"]["high"] == 0.7
    out = runner.invoke(app, ["models", "show", "--json"])
    assert out.exit_code == 0, out.output
    cal = json.loads(out.output)["calibration"]
    assert cal["n"] == 2 and cal["positives"] == 1
    assert cal["brier"] == round(((0.9 - 1) ** 2 + 0.2**2) / 2, 4)

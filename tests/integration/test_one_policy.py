"""One policy: the alert engine and the backtest raise the same alerts from the same predictions."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
from psycopg.types.json import Jsonb

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

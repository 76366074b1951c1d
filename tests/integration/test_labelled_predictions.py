"""Labelled predictions (calibration, threshold tuning) against a plain Python oracle.

The storage query labels each champion prediction from one ordered pass over predictions and
failures; the oracle here scans every failure for every prediction, as the definition reads.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb

from forewarn.storage.alerts import calibration_sums, labelled_history, labelled_predictions
from forewarn.storage.assets import upsert_registry
from models.calibration import calibration_report, report_from_sums
from tools.seed import seed_registry

T0 = datetime(2026, 3, 1, tzinfo=UTC)
HORIZON_H = 24.0


def _plant(db: psycopg.Connection) -> tuple[list[tuple[str, datetime, str, float, str]], dict]:
    """Random predictions and failures on six machines, with failures on the edges of horizons."""
    rng = random.Random(11)
    reg = seed_registry(6)
    upsert_registry(db, reg)
    types = {m.id: m.type_id for m in reg.machines}
    preds, failures = [], {m: [] for m in types}
    for m in types:
        for i in range(240):  # every 30 min for five days
            ts = T0 + timedelta(minutes=30 * i)
            role = "champion" if rng.random() < 0.8 else "challenger"
            quality = "ok" if rng.random() < 0.9 else "stale_inputs"
            preds.append((m, ts, role, round(rng.random(), 4), quality))
        for _ in range(3):
            failures[m].append(T0 + timedelta(minutes=rng.randrange(0, 240 * 30)))
        # exactly at a prediction (not after it) and exactly one horizon after another (within)
        failures[m].append(T0 + timedelta(minutes=30 * rng.randrange(240)))
        failures[m].append(T0 + timedelta(minutes=30 * rng.randrange(200), hours=HORIZON_H))
    with db.cursor() as cur:
        cur.executemany(
            "insert into predictions (machine_id, ts, role, failure_prob, data_quality)"
            " values (%s, %s, %s, %s, %s) on conflict do nothing",
            preds,
        )
        cur.executemany(
            "insert into machine_events (machine_id, seq, ts, event, mode) values"
            " (%s, %s, %s, 'failure', 'bearing') on conflict do nothing",
            [(m, i + 1, ts) for m, fs in failures.items() for i, ts in enumerate(fs)],
        )
        cur.executemany(  # maintenance is not a failure
            "insert into machine_events (machine_id, seq, ts, event, kind) values"
            " (%s, 100, %s, 'maintenance', 'repair')",
            [(m, T0 + timedelta(hours=30)) for m in types],
        )
        cur.execute(  # the newest reading ends the labelled span of labelled_predictions
            "insert into readings (machine_id, seq, ts, values) values (%s, 1, %s, %s)",
            (reg.machines[0].id, T0 + timedelta(days=4), Jsonb({})),
        )
    db.commit()
    return preds, {"types": types, "failures": failures}


def _oracle(
    preds: list, plant: dict, until: datetime
) -> list[tuple[str, str, datetime, float, bool]]:
    h = timedelta(hours=HORIZON_H)
    out = []
    for m, ts, role, p, quality in preds:
        if role != "champion" or quality != "ok" or ts + h > until:
            continue
        failed = any(ts < f <= ts + h for f in plant["failures"][m])
        out.append((plant["types"][m], m, ts, p, failed))
    return out


def test_labelled_predictions_match_the_definition(db: psycopg.Connection) -> None:
    preds, plant = _plant(db)
    last_event = max(max(fs) for fs in plant["failures"].values())
    until = max(last_event, T0 + timedelta(days=4), T0 + timedelta(hours=30))
    want = _oracle(preds, plant, until)
    assert sum(w[4] for w in want) > 20 and sum(not w[4] for w in want) > 200  # both labels occur
    got = labelled_predictions(db, horizon_h=HORIZON_H)
    assert sorted(got) == sorted((t, p, f) for t, _, _, p, f in want)
    # the limit keeps the newest: cut at a time shared by several machines' predictions
    cut = sorted({w[2] for w in want})[-20]
    newest = [(t, p, f) for t, _, ts, p, f in want if ts >= cut]
    got = labelled_predictions(db, horizon_h=HORIZON_H, limit=len(newest))
    assert sorted(got) == sorted(newest)


def test_labelled_history_per_type_matches_the_definition(db: psycopg.Connection) -> None:
    preds, plant = _plant(db)
    until = max(  # labelled_history ends at the newest prediction or event
        max(ts for _, ts, *_ in preds), max(max(fs) for fs in plant["failures"].values())
    )
    want = _oracle(preds, plant, until)
    for type_id in ("cnc", "pump"):
        got = labelled_history(db, type_id, horizon_h=HORIZON_H)
        assert sorted(got) == sorted((m, ts, p, f) for t, m, ts, p, f in want if t == type_id)


def test_calibration_summed_in_the_database_matches_the_rows(db: psycopg.Connection) -> None:
    _plant(db)
    db.execute("update predictions set failure_prob = 1.0 where ts = %s", (T0,))  # the last bin
    rows = labelled_predictions(db, horizon_h=HORIZON_H)
    want = calibration_report(rows, horizon_h=HORIZON_H, bins=10)
    got = report_from_sums(calibration_sums(db, horizon_h=HORIZON_H, bins=10), horizon_h=HORIZON_H)
    assert got == want
    assert want["n"] == len(rows) and set(want["by_type"]) == {"cnc", "pump"}
    assert want["bins"][-1]["bin"] == [0.9, 1.0] and 0 < want["brier"] < 1
    # the newest predictions only, as labelled_predictions keeps them
    few = report_from_sums(calibration_sums(db, horizon_h=HORIZON_H, bins=10, limit=100),
                           horizon_h=HORIZON_H)  # fmt: skip
    assert few["n"] == 100

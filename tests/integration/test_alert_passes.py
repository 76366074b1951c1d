"""An alert pass does work in proportion to what changed, not to the fleet.

The streaming path reads only the scores its machines' states have not applied and writes only the
states that moved; the champion path wakes on a notification of new champion predictions instead
of probing every machine on every pass.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb

from forewarn.settings import load_settings
from forewarn.storage.assets import upsert_registry
from forewarn.storage.stream import unapplied_stream_predictions
from models.runners.alerting import ChampionWatch, run_alerting_loop
from models.runners.stream_alerting import run_stream_alerting_once
from tests.factories import T0, make_registry

MACHINES = 20


def _stream(conn: psycopg.Connection, rows: list[tuple[str, datetime, float]]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "insert into predictions (machine_id, ts, role, failure_prob, anomaly, mode,"
            " contributions) values (%s, %s, 'stream', %s, 1.0, 'anomaly', %s)",
            [(m, ts, p, Jsonb({"bearing_temp": 9.0})) for m, ts, p in rows],
        )


def _states(conn: psycopg.Connection) -> dict[str, tuple[int, datetime, datetime]]:
    rows = conn.execute(
        "select machine_id, consecutive_high, last_ts, updated_at from alert_stream_state"
    ).fetchall()
    return {r[0]: (int(r[1]), r[2], r[3]) for r in rows}


def test_stream_pass_touches_only_the_machines_with_new_scores(db_url: str) -> None:
    settings = load_settings()  # k = 3 consecutive scores >= 0.6 raise
    reg = make_registry(machines=MACHINES)
    ids = [m.id for m in reg.machines]
    hot, other = ids[3], ids[11]
    since = T0 - timedelta(minutes=10)
    with psycopg.connect(db_url, autocommit=True) as conn:
        upsert_registry(conn, reg)
        _stream(conn, [(m, T0, 0.01) for m in ids])  # every machine's first (low) score
        with conn.transaction():
            assert run_stream_alerting_once(conn, settings, T0, since) == (0, T0)
        first = _states(conn)
        assert set(first) == set(ids) and all(v[2] == T0 for v in first.values())
        assert unapplied_stream_predictions(conn, since) == []  # applied rows are not read again

        t1 = T0 + timedelta(seconds=1)
        _stream(conn, [(hot, t1 + timedelta(seconds=i), 0.99) for i in range(3)])
        _stream(conn, [(other, t1, 0.99)])
        # a worker that does not own ``hot``'s partition leaves it alone
        with conn.transaction():
            n, newest = run_stream_alerting_once(
                conn, settings, t1, since, owns=lambda m: m == other
            )
        assert (n, newest) == (0, t1)
        after = _states(conn)
        assert after[hot] == first[hot] and after[other] == (1, t1, t1)

        now = t1 + timedelta(seconds=5)
        with conn.transaction():
            n, newest = run_stream_alerting_once(conn, settings, now, since)
        assert (n, newest) == (1, t1 + timedelta(seconds=2))
        later = _states(conn)
        changed = {m for m in ids if later[m] != after[m]}
        assert changed == {hot}, changed
        assert later[hot] == (3, t1 + timedelta(seconds=2), now)
        assert conn.execute("select machine_id, mode, status from alerts").fetchall() == [
            (hot, "anomaly", "open")
        ]
        # nothing new: nothing read, nothing written
        with conn.transaction():
            assert run_stream_alerting_once(conn, settings, now, since) == (0, None)
        assert _states(conn) == later


def test_champion_watch_looks_only_when_there_is_something_to_look_for() -> None:
    w = ChampionWatch(rescan_s=3600.0)
    assert w.due([0, 1])  # first pass
    assert not w.due([0, 1])
    assert w.due([0, 1, 2])  # gained a partition: its last holder may not have applied it
    assert not w.due([1, 2])  # lost one: nothing new to look at
    w.failed()
    assert w.due([1, 2])  # the pass that looked did not commit
    assert not w.due([1, 2])


def test_loop_wakes_on_new_champion_predictions(db_url: str) -> None:
    """The loop rescans without a notification only once a minute; a new champion prediction
    raises its alert within seconds, so the notification woke it. Housekeeping still closes the
    alert of a machine that then fails without sending a new score."""
    base = load_settings()
    settings = base.model_copy(
        update={"models": base.models.model_copy(update={"stale_after_s": 1e12})}
    )
    reg = make_registry(machines=3)
    a, b = reg.machines[0].id, reg.machines[1].id

    def champion(conn: psycopg.Connection, machine: str, probs: list[float]) -> None:
        for i, p in enumerate(probs):
            conn.execute(
                "insert into predictions (machine_id, ts, role, failure_prob, rul_h, mode)"
                " values (%s, %s, 'champion', %s, 20.0, 'bearing')",
                (machine, T0 + timedelta(seconds=5 * i), p),
            )

    def wait(conn: psycopg.Connection, sql: str, want: object, timeout_s: float) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            if conn.execute(sql).fetchone() == want:
                return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout_s}s: {sql}")

    stop = threading.Event()
    with psycopg.connect(db_url, autocommit=True) as conn:
        upsert_registry(conn, reg)
        champion(conn, a, [0.1])
        t = threading.Thread(
            target=run_alerting_loop,
            args=(settings, db_url),
            kwargs={"stop": stop, "interval_s": 0.1},
        )
        t.start()
        try:
            # the first pass applied what was there
            wait(conn, f"select count(*) from alert_state where machine_id = '{a}'", (1,), 30)
            champion(conn, b, [0.9, 0.9, 0.9])
            took = wait(conn, "select count(*) from alerts", (1,), 30)
            assert took < 15, took  # well inside the 60 s rescan
            assert conn.execute("select machine_id from alerts").fetchone() == (b,)
            # a machine without new scores: its overtaken alert is closed by the housekeeping
            conn.execute(
                "insert into machine_events (machine_id, seq, ts, event, mode)"
                " values (%s, 1, %s, 'failure', 'bearing')",
                (b, T0 + timedelta(hours=1)),
            )
            wait(conn, "select status from alerts", ("failed",), 30)
        finally:
            stop.set()
            t.join(timeout=10)
    assert not t.is_alive()

"""The backtest runner: history from the database -> :mod:`models.roi` -> a stored result.

``forewarn backtest`` reads champion predictions, failures and maintenance (machine_events) and the
machine-type costs, backtests the three maintenance policies and stores the result.

``forewarn backtest --simulate`` makes its own history: the simulator runs the plant to failure (no
maintenance hook acts), the messages go into a temporary embedded PostgreSQL with the ingest
storage functions, a failure classifier is trained on the first part (time split) with the one
feature implementation (:mod:`models.features`), its predictions for the rest are written to the
predictions table, and the same database path as above backtests them.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd
from psycopg import Connection

from forewarn.errors import NotFound
from forewarn.storage import events as events_store
from forewarn.storage import predictions as predictions_store
from forewarn.storage import roi as roi_store
from forewarn.storage.assets import load_costs
from forewarn.storage.readings import reading_span
from models.oos import SEGMENTS, proposed_policy, rolling_origin
from models.policy import AlertPolicy, PolicySet
from models.roi import BacktestConfig

if TYPE_CHECKING:
    from forewarn.factory import Factory

log = logging.getLogger(__name__)

ROLE = "champion"
# The scoring loop stamps a prediction with the start of the hour it summarises; the score exists
# only once that hour is complete, so the backtest acts on it this much later (no peeking).
SCORE_AVAILABLE_AFTER_H = 1.0
WRITE_CHUNK = 100_000  # messages per COPY transaction when loading a simulated history


# ---- reading the history -------------------------------------------------------------------


def load_failures(conn: Connection, until: datetime) -> pd.DataFrame:
    """Failures up to ``until`` with the duration of the repair that followed (hours, or NaN)."""
    rows = events_store.failures_with_downtime(conn, until)
    df = pd.DataFrame(rows, columns=["machine_id", "ts", "mode", "downtime_h"])
    df["downtime_h"] = pd.to_numeric(df["downtime_h"], errors="coerce")
    return df


def load_renewals(conn: Connection, until: datetime) -> pd.DataFrame:
    """Maintenance not caused by a failure (it ends a life without one): start time and hours."""
    rows = events_store.renewals(conn, until)
    df = pd.DataFrame(rows, columns=["machine_id", "ts", "downtime_h"])
    df["downtime_h"] = pd.to_numeric(df["downtime_h"], errors="coerce")
    return df


def load_scores(
    conn: Connection,
    since: datetime,
    until: datetime,
    role: str = ROLE,
    available_after_h: float = SCORE_AVAILABLE_AFTER_H,
) -> pd.DataFrame:
    """Failure probabilities of one role, at the time each became available, inside the window.

    Predictions flagged with a data-quality problem are left out (the alert engine ignores them).
    """
    rows = predictions_store.available_scores(conn, since, until, role, available_after_h)
    return pd.DataFrame(rows, columns=["machine_id", "ts", "failure_prob"])


def history_bounds(conn: Connection) -> tuple[datetime | None, datetime | None]:
    """First and last reading time in the database."""
    return reading_span(conn)


def run_backtest(
    conn: Connection,
    *,
    window: tuple[datetime, datetime],
    config: BacktestConfig,
    role: str = ROLE,
    source: str = "database",
    params: Mapping[str, Any] | None = None,
    history_start: datetime | None = None,
    store: bool = True,
    available_after_h: float = SCORE_AVAILABLE_AFTER_H,
    default_policy: AlertPolicy | None = None,
    segments: int = SEGMENTS,
    seed: int = 0,
) -> dict[str, Any]:
    """Backtest the stored predictions over ``window``; store and return the JSON result.

    The top-level figures are in sample (tuned and scored on the same lives: what-ifs re-price
    them); ``out_of_sample`` holds the rolling-origin figures with bootstrap intervals
    (:mod:`models.oos`). When those beat both baselines, a policy version is proposed (stored,
    not promoted) and returned under ``policy``.

    ``available_after_h``: how long after its timestamp a prediction exists (see
    SCORE_AVAILABLE_AFTER_H; 0 for predictions stamped with the reading they were made from).
    """
    costs, types, by_type = load_costs(conn)
    if not costs:
        raise NotFound("no machines in the registry: nothing to backtest")
    failures = load_failures(conn, window[1])
    renewals = load_renewals(conn, window[1])
    scores = load_scores(conn, window[0], window[1], role, available_after_h)
    if history_start is None:
        history_start = history_bounds(conn)[0]
    res, summary, report = rolling_origin(
        failures,
        scores,
        costs,
        window,
        config=config,
        types=types,
        renewals=renewals,
        history_start=history_start,
        segments=segments,
        seed=seed,
    )
    out = res.to_dict()
    out["sample"] = "in-sample: tuned and scored on the same lives (see out_of_sample)"
    out.update(report)
    out["window"] = {"from": window[0].isoformat(), "to": window[1].isoformat()}
    out["scores"] = len(scores)
    proposal = proposed_policy(config, report, default_policy or config.policy_at(0.6))
    if store:
        out["backtest_id"] = roi_store.save_backtest(
            conn,
            source=source,
            window=window,
            params={
                "config": {**asdict(config), "thresholds": None},
                "role": role,
                "available_after_h": available_after_h,
                **(params or {}),
            },
            costs={t: asdict(c) for t, c in by_type.items()},
            result=out,
            summary=summary.to_dict(),
        )
    out["policy"] = _propose(conn if store else None, proposal, out)
    if store:
        conn.commit()
    return out


def _propose(
    conn: Connection | None, proposal: PolicySet | None, out: dict[str, Any]
) -> dict[str, Any] | None:
    """Store the proposed policy version (when there is one and a connection); its JSON."""
    from forewarn.storage.policies import save_policy

    if proposal is None:
        out["policy_not_proposed"] = (
            "its out-of-sample savings do not beat both run-to-failure and fixed-interval"
        )
        return None
    version = None
    if conn is not None:
        version = save_policy(
            conn,
            proposal.to_dict(),
            source="backtest",
            figures=policy_figures(out),
            backtest_id=out.get("backtest_id"),
            note="proposed by forewarn backtest: promote with `forewarn policy promote VERSION`",
        )
    return {**proposal.to_dict(), "version": version}


def policy_figures(out: dict[str, Any]) -> dict[str, Any]:
    """The backtested figures a policy version keeps (what `forewarn policy show` prints)."""
    keep = ("in_sample", "out_of_sample", "method", "window", "tuned")
    return {k: out[k] for k in keep if k in out}


# ---- the self-contained simulated run --------------------------------------------------------


def write_history(conn: Connection, messages: list[Any]) -> tuple[int, int]:
    """Store simulated messages with the ingest storage functions; returns (readings, events)."""
    from forewarn.contract import Event, Telemetry
    from forewarn.storage.readings import insert_events, insert_readings

    n_r = n_e = 0
    for i in range(0, len(messages), WRITE_CHUNK):
        chunk = messages[i : i + WRITE_CHUNK]
        n_r += insert_readings(conn, [m for m in chunk if isinstance(m, Telemetry)])
        n_e += insert_events(conn, [m for m in chunk if isinstance(m, Event)])
        conn.commit()
    return n_r, n_e


class SimulatedHistory(Protocol):
    """What a simulator run returns: the clean messages and the ground truth (``.event``, ``.ts``)."""

    messages: list[Any]
    truth: list[Any]


def simulate_backtest(
    *,
    simulate: Callable[[Factory, float, int], SimulatedHistory],
    machines: int,
    days: float,
    seed: int,
    config: BacktestConfig,
    train_fraction: float = 0.5,
    factory_path: Path | None = None,
    state_dir: Path | None = None,
    save_url: str | None = None,
    default_policy: AlertPolicy | None = None,
    segments: int = SEGMENTS,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, Any]:
    """Simulate, store, train, score and backtest in a temporary embedded database.

    ``progress(done, total, stage)`` is called as each of the five stages starts and at the end.

    ``simulate(factory, hours, seed)`` runs the plant (the caller passes the simulator's
    ``run_history``: the models never import the simulator process package).

    With ``save_url`` the stored result (and its per-life summary, for what-ifs) is copied into
    that database too, so a live plant's ROI page can show it.
    """
    from forewarn.factory import load_factory
    from forewarn.storage.assets import upsert_registry
    from forewarn.storage.db import connect
    from forewarn.storage.migrate import migrate
    from forewarn.storage.server import embedded_postgres
    from models.runners.holdout import train_and_score

    if not 0 < train_fraction < 1:
        raise ValueError("train_fraction must be between 0 and 1")

    def stage(done: int, text: str) -> None:
        if progress is not None:
            progress(done, 5, text)

    t0 = time.monotonic()
    timings: dict[str, float] = {}
    factory = load_factory(factory_path, machines=machines)
    stage(0, f"simulating {days:g} days of {machines} machines")
    history = simulate(factory, days * 24.0, seed)
    timings["simulate_s"] = time.monotonic() - t0
    start = factory.start
    split = start + timedelta(hours=days * 24.0 * train_fraction)
    end = start + timedelta(hours=days * 24.0)
    with tempfile.TemporaryDirectory(prefix="forewarn-backtest-") as tmp:
        state = state_dir or Path(tmp)
        with embedded_postgres(state) as url, connect(url) as conn:
            migrate(conn)
            upsert_registry(conn, factory.registry())
            conn.commit()
            t1 = time.monotonic()
            stage(1, "storing the simulated history")
            n_r, n_e = write_history(conn, history.messages)
            timings["store_s"] = time.monotonic() - t1
            del history.messages[:]  # the database holds them now
            t2 = time.monotonic()
            stage(2, "training the models and scoring the held-out days")
            metrics = train_and_score(
                conn, start=start, split=split, end=end, horizon_h=config.horizon_h, seed=seed
            )
            timings["train_score_s"] = time.monotonic() - t2
            t3 = time.monotonic()
            stage(3, "backtesting in and out of sample")
            out = run_backtest(
                conn,
                window=(split, end),
                config=config,
                source="simulation",
                params={"machines": machines, "sim_days": days, "seed": seed},
                history_start=start,
                store=True,
                available_after_h=0.0,  # holdout stamps each score with its own reading
                default_policy=default_policy,
                segments=segments,
                seed=seed,
            )
            timings["backtest_s"] = time.monotonic() - t3
            if save_url is not None:
                out["saved_backtest_id"] = _copy_backtest(conn, int(out["backtest_id"]), save_url)
                if out.get("policy") is not None:
                    out["policy"]["version"] = _save_policy_at(save_url, out)
                    out["policy"]["stored_in"] = "the configured database"
            elif out.get("policy") is not None:
                out["policy"]["stored_in"] = "the temporary database only (not kept: use --save)"
    truth = [t for t in history.truth if t.event == "failure"]
    out["simulation"] = {
        "machines": machines,
        "sim_days": days,
        "seed": seed,
        "readings": n_r,
        "events": n_e,
        "failures_total": len(truth),
        "failures_in_window": sum(1 for t in truth if split < t.ts <= end),
        "train_until": split.isoformat(),
        "models": metrics,
    }
    timings["total_s"] = time.monotonic() - t0
    out["timings"] = {k: round(v, 1) for k, v in timings.items()}
    stage(5, "done")
    return out


def _save_policy_at(url: str, out: dict[str, Any]) -> int:
    """Store the proposed policy in the database at ``url``; returns its version there."""
    from forewarn.storage.db import connect
    from forewarn.storage.migrate import migrate
    from forewarn.storage.policies import save_policy

    pol = {k: v for k, v in out["policy"].items() if k not in ("version", "stored_in")}
    with connect(url) as target:
        migrate(target)
        with target.transaction():
            return save_policy(
                target,
                pol,
                source="backtest",
                figures=policy_figures(out),
                backtest_id=out.get("saved_backtest_id"),
                note="proposed by forewarn backtest --simulate",
            )


def _copy_backtest(conn: Connection, backtest_id: int, url: str) -> int:
    """Copy one stored backtest into the database at ``url``; returns its id there."""
    from forewarn.storage.db import connect
    from forewarn.storage.migrate import migrate

    record = roi_store.backtest_record(conn, backtest_id)
    assert record is not None
    with connect(url) as target:
        migrate(target)
        with target.transaction():
            return roi_store.save_backtest(target, **record)


def history_backtest(
    conn: Connection,
    *,
    config: BacktestConfig,
    train_fraction: float = 0.5,
    seed: int = 0,
    default_policy: AlertPolicy | None = None,
    segments: int = SEGMENTS,
) -> dict[str, Any]:
    """Backtest the stored history (e.g. an imported one) out of sample, and store the result.

    A failure classifier per machine type learns from the first ``train_fraction`` of the history
    (labels only from failures known by then) and scores the rest; the same backtest as for
    live predictions runs on those scores. The scores live in a session-scoped scratch table, so
    the plant's own predictions are never touched.
    """
    from forewarn.storage.scratch import shadow_predictions
    from models.runners.holdout import train_and_score

    if not 0 < train_fraction < 1:
        raise ValueError("train_fraction must be between 0 and 1")
    start, end = history_bounds(conn)
    if start is None or end is None:
        raise NotFound("no readings in the database: import or ingest some history first")
    split = start + (end - start) * train_fraction
    with shadow_predictions(conn):
        metrics = train_and_score(
            conn, start=start, split=split, end=end, horizon_h=config.horizon_h, seed=seed
        )
        if not metrics:
            raise NotFound(
                "no machine type has failures before the split: import a longer history or the"
                " failure log (forewarn import events), or raise --train-fraction"
            )
        out = run_backtest(
            conn,
            window=(split, end),
            config=config,
            source="database",
            params={"history_holdout": True, "train_fraction": train_fraction, "seed": seed},
            history_start=start,
            store=True,
            available_after_h=0.0,  # holdout stamps each score with its own reading
            default_policy=default_policy,
            segments=segments,
            seed=seed,
        )
    out["history"] = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "train_until": split.isoformat(),
        "models": metrics,
    }
    return out


def default_window(conn: Connection, days: float | None) -> tuple[datetime, datetime]:
    """The last ``days`` of predictions (all of them when None)."""
    span = predictions_store.prediction_span(conn, ROLE)
    if span is None:
        raise NotFound("no champion predictions in the database: score first, or use --simulate")
    lo, hi = span
    if days is not None:
        lo = max(lo, hi - timedelta(days=days))
    return lo, hi

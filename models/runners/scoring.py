"""Scoring runner: champion, challenger and the online model score every active machine.

Each pass scores the last SCORING_LOOKBACK_H hours of hourly data per machine type (plant clock =
the newest reading; the window is kept between passes and only the hours it lacks are read, see
`models.runners.history.hourly_window`), scores each machine's latest *completed* hour, and stores one prediction per
(machine, hour, role). Only champion predictions drive alerts. The online (River) model learns
from the same hourly rows with delayed labels and is checkpointed to the database every pass, so
a restart continues where it stopped.
"""

from __future__ import annotations

import logging
import math
import pickle
import threading
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from psycopg import Connection
from psycopg.types.json import Jsonb

from forewarn.assets import MachineType, Periods
from forewarn.health import LoopHealth
from forewarn.partitions import split
from forewarn.settings import Settings
from forewarn.storage import audit
from forewarn.storage.assets import load_registry, machine_type_periods, registry_fingerprint
from forewarn.storage.model_registry import load_checkpoint, save_checkpoint
from forewarn.storage.predictions import champion_scored, insert_predictions
from forewarn.storage.readings import latest_reading_time
from models.bundle import SCORING_LOOKBACK_H, ModelBundle, feature_spec
from models.frames import TIME_COL, to_hours
from models.online import OnlineFailureModel
from models.runners.history import HourlyWindow, events_from_db, hourly_window, machine_types
from models.runners.model_registry import StoredModel, load_alias, model_name

log = logging.getLogger(__name__)

PASS_LOG_KEEP_S = (
    3600.0  # score_passes rows older than this are deleted (about 30 KB/s per 1,000 machines)
)
ROLES = ("champion", "challenger")
MISSING_SHARE = 0.5  # more sensors than this missing in the hour -> low data quality


@dataclass
class ScoringState:
    """Loaded models by version id, so a pass reloads only after a promotion."""

    bundles: dict[int, ModelBundle] = field(default_factory=dict)
    online: dict[str, OnlineFailureModel] = field(default_factory=dict)
    drift_events: int = 0
    hour_done: dict[str, datetime] = field(default_factory=dict)  # shard -> last hour scored
    # (shard, type) -> hourly means held between passes: each hour reads only the new hours
    windows: dict[tuple[str, str], HourlyWindow] = field(default_factory=dict)

    def bundle(self, stored: StoredModel) -> ModelBundle:
        if stored.id not in self.bundles:
            self.bundles[stored.id] = ModelBundle.load(stored.artifact)
        return self.bundles[stored.id]


def data_quality(row: pd.Series, sensors: list[str]) -> str:
    """'ok', or 'missing' when most sensors of the scored hour are absent."""
    missing = sum(1 for s in sensors if s not in row or pd.isna(row[s]))
    return "missing" if sensors and missing / len(sensors) > MISSING_SHARE else "ok"


def _prediction_rows(
    preds: pd.DataFrame, hourly_last: pd.DataFrame, role: str, version_id: int, sensors: list[str]
) -> list[tuple[Any, ...]]:
    last = hourly_last.set_index("machine_id")
    rows = []
    for p in preds.itertuples(index=False):
        quality = data_quality(last.loc[p.machine_id], sensors)
        rows.append(
            (
                p.machine_id,
                p.ts,
                role,
                version_id,
                float(p.failure_prob),
                float(p.rul_h),
                float(p.rul_low_h),
                float(p.rul_high_h),
                None,
                p.mode,
                Jsonb(p.contributions),
                quality,
            )
        )
    return rows


def _insert_predictions(conn: Connection, rows: list[tuple[Any, ...]]) -> int:
    return insert_predictions(conn, rows)


def score_once(
    conn: Connection,
    settings: Settings,
    state: ScoringState,
    *,
    machines: Collection[str] | None = None,
    shard: str = "",
) -> int:
    """One scoring pass over every machine type; returns predictions written.

    ``machines`` limits the pass to a partition's machines; ``shard`` names that partition's own
    online-model checkpoint (each partition learns its own online model).
    """
    now = latest_reading_time(conn)
    if now is None:
        return 0
    # Completed hours only: an hour is scored once, when its last reading can have arrived.
    end = now.replace(minute=0, second=0, microsecond=0)
    if machines is not None and state.hour_done.get(shard) == end:
        return 0  # this partition's latest completed hour is already scored
    start = end - timedelta(hours=SCORING_LOOKBACK_H)
    written = 0
    periods = machine_type_periods(conn)
    for t, all_ids in machine_types(conn):
        ids = all_ids if machines is None else [m for m in all_ids if m in machines]
        if not ids:
            continue
        sensors = [s.name for s in t.sensors]
        models = {r: load_alias(conn, model_name(t.id), r) for r in ROLES}
        # a machine's hours since it took this type (readings before keep their older type)
        had = periods.get(t.id, {})
        key = (shard, t.id)
        hourly, state.windows[key] = hourly_window(
            conn, state.windows.get(key), ids, sensors, start, end, had
        )
        if hourly.empty:
            continue
        hourly = _unscored(conn, hourly)
        if hourly.empty:
            continue
        last = hourly.loc[hourly.groupby("machine_id")[TIME_COL].idxmax()]
        with conn.transaction():
            for role, stored in models.items():
                if stored is None:
                    continue
                preds = state.bundle(stored).score(hourly)
                written += _insert_predictions(
                    conn, _prediction_rows(preds, last, role, stored.id, sensors)
                )
            written += _score_online(
                conn, state, t.id, sensors, ids, hourly, settings, (start, end, had), shard
            )
    state.hour_done[shard] = end
    return written


def _unscored(conn: Connection, hourly: pd.DataFrame) -> pd.DataFrame:
    """Drop machines whose latest completed hour already has a champion prediction."""
    last = hourly.groupby("machine_id")["ts"].max()
    finished = champion_scored(
        conn, list(last.index), [pd.Timestamp(v).to_pydatetime() for v in last.to_numpy()]
    )
    return hourly[~hourly["machine_id"].isin(finished)]


# --- online model ---------------------------------------------------------------------------


def _checkpoint_name(type_id: str, shard: str = "") -> str:
    return f"online-{type_id}{shard}"


def _load_online(
    conn: Connection,
    state: ScoringState,
    type_id: str,
    sensors: list[str],
    horizon_h: float,
    shard: str = "",
) -> tuple[OnlineFailureModel, float]:
    """The online model and the last hour it has seen (from its database checkpoint)."""
    row = load_checkpoint(conn, _checkpoint_name(type_id, shard))
    key = type_id + shard
    if key in state.online and row is not None:
        return state.online[key], float(row[1].get("t_h", -math.inf))
    if row is not None:
        try:
            model = OnlineFailureModel.load(bytes(row[0]))
            state.online[key] = model
            return model, float(row[1].get("t_h", -math.inf))
        except (ValueError, pickle.UnpicklingError, AttributeError) as exc:
            log.warning("online checkpoint for %s unusable (%s); starting fresh", type_id, exc)
    champion = load_alias(conn, model_name(type_id), "champion")
    spec, normalizer = feature_spec(sensors), None
    if champion is not None:
        bundle = state.bundle(champion)
        spec, normalizer = bundle.spec, bundle.normalizer
    model = OnlineFailureModel(spec, normalizer, horizon=horizon_h)
    state.online[key] = model
    return model, -math.inf


def _score_online(
    conn: Connection,
    state: ScoringState,
    type_id: str,
    sensors: list[str],
    ids: list[str],
    hourly: pd.DataFrame,
    settings: Settings,
    window: tuple[datetime, datetime, Periods],
    shard: str = "",
) -> int:
    model, seen_h = _load_online(conn, state, type_id, sensors, settings.models.horizon_h, shard)
    new = hourly[hourly[TIME_COL] > seen_h].sort_values([TIME_COL, "machine_id"], kind="stable")
    if new.empty:
        return 0
    failures = events_from_db(conn, ids, *window)
    failures = failures[failures["event"] == "failure"]
    fail_h = to_hours(failures["ts"]) if len(failures) else []
    pending_failures = sorted(
        (float(h), str(m))
        for h, m in zip(fail_h, failures["machine_id"], strict=True)
        if h > seen_h
    )
    rows, drift, fired = [], 0, Counter[str]()
    for rec in new.to_dict("records"):
        while pending_failures and pending_failures[0][0] <= rec[TIME_COL]:
            fh, fm = pending_failures.pop(0)
            model.failure(fm, fh)
        out = model.observe(rec)
        drift += len(out.drift)
        fired.update(out.drift)
        rows.append(
            (
                rec["machine_id"],
                rec["ts"].to_pydatetime(),
                "online",
                None,
                out.failure_prob,
                None,
                None,
                None,
                out.anomaly,
                None,
                None,
                "ok",
            )
        )
    for fh, fm in pending_failures:
        model.failure(fm, fh)
    save_checkpoint(
        conn,
        _checkpoint_name(type_id, shard),
        model.save(),
        {"t_h": float(new[TIME_COL].max()), **model.summary()},
    )
    if drift:
        state.drift_events += drift
        audit.record(
            conn,
            "scoring",
            "drift",
            type_id,
            # which detectors fired ("input:<feature>", "error"), for people reading the event
            {"detectors": drift, "fired": dict(sorted(fired.items())), "summary": model.summary()},
            at=new["ts"].max().to_pydatetime(),
        )
    return _insert_predictions(conn, rows)


@dataclass
class _Fleet:
    """The registry as the streaming scorer partitions it: reloaded only when it changed."""

    fingerprint: str | None = None
    types: dict[str, MachineType] = field(default_factory=dict)
    by_type: dict[str, dict[int, list[str]]] = field(default_factory=dict)  # type -> partitions

    def refresh(self, conn: Connection, partitions: int) -> None:
        fingerprint = registry_fingerprint(conn)  # a digest, not the whole registry, every pass
        if fingerprint == self.fingerprint:
            return
        reg = load_registry(conn)
        self.types = {t.id: t for t in reg.types if t.sensors}
        self.by_type = {
            t: split([x.id for x in reg.machines if x.type_id == t], partitions) for t in self.types
        }
        self.fingerprint = fingerprint


def run_scoring_loop(
    settings: Settings, url: str, *, stop: threading.Event, health: LoopHealth | None = None
) -> None:
    """Score until ``stop``: the stream every ``stream_cadence_s``, completed hours as they complete.

    The worker shares the fleet with the other `forewarn score` workers through partition leases
    (`forewarn.scaleout`); each partition's work runs behind the lease fence. A DB outage is retried.
    """
    from forewarn.clock import wall_now
    from forewarn.periodic import run_periodic
    from forewarn.scaleout import LeaseKeeper
    from forewarn.storage import leases
    from forewarn.storage.stream import trim_pass_log
    from models.runners.stream_scoring import SERVICE, StreamScorer, stream_since

    m = settings.models
    keeper = LeaseKeeper(SERVICE, m.partitions, m.lease_s)
    scorer = StreamScorer(keeper.worker, m.partitions, m.alert_low)
    state = ScoringState()
    last_hourly = [0.0]
    fleet = _Fleet()

    def step(conn: Connection) -> int:
        held = keeper.tick(conn)
        if not held:
            return 0
        fleet.refresh(conn, m.partitions)
        types, by_type = fleet.types, fleet.by_type
        since = stream_since(conn)
        written = 0
        if since is not None:
            held_parts = {
                p: {t: parts[p] for t, parts in by_type.items() if parts[p]} for p in held
            }
            written += scorer.run_pass(conn, held_parts, types, since, wall_now()).written
        if time.monotonic() - last_hourly[0] >= m.score_cadence_s:
            last_hourly[0] = time.monotonic()
            if 0 in held:  # one worker keeps the pass log to its last hour
                trim_pass_log(conn, PASS_LOG_KEEP_S)
            for p in held:
                ids = {x for parts in by_type.values() for x in parts[p]}
                with conn.transaction():
                    if leases.fence(conn, SERVICE, keeper.worker, p):
                        written += score_once(conn, settings, state, machines=ids, shard=f"-p{p}")
        return written

    try:
        run_periodic("scoring", url, step, stop=stop, interval_s=m.stream_cadence_s, health=health)
    finally:
        keeper.leave_url(url)

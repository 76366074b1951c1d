"""Streaming scorer runner: each pass scores every new reading of the partitions this worker holds.

Per partition, one transaction: fence the lease, check the checkpoint version (reload the
baselines if another worker wrote since), read the readings newer than each machine's last scored
seq, score them in rounds (`models.stream`), write the predictions that can change the alert
policy's decision, log the pass, save the checkpoint. A worker killed mid-pass leaves nothing
behind; the next holder continues from the last committed checkpoint, so every reading is scored
exactly once.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from time import monotonic as clock
from typing import Any

import numpy as np
import orjson
from psycopg import Connection

from forewarn.assets import MachineType
from forewarn.clock import wall_now
from forewarn.storage import leases
from forewarn.storage import stream as store
from forewarn.storage.readings import latest_reading_time
from models.stream import (
    STATE_VERSION,
    StreamConfig,
    TypeBaselines,
    policy_relevant,
    score_and_learn,
)

log = logging.getLogger(__name__)

SERVICE = "scoring"
BASELINES_EVERY_S = 15.0  # the baselines part of a checkpoint; positions go every pass
STAGGER = 15  # baselines saves spread over this many slots of the period: no pass saves them all
LOOKBACK = timedelta(minutes=10)  # the stream never looks further back (plant time)


@dataclass
class PartitionState:
    """What a partition's checkpoint holds."""

    baselines: dict[str, TypeBaselines] = field(default_factory=dict)
    last_seq: dict[str, int] = field(default_factory=dict)
    low_seen: dict[str, bool] = field(default_factory=dict)

    def dumps(self) -> bytes:
        return pickle.dumps({"version": STATE_VERSION, "state": self})

    def dumps_positions(self) -> bytes:
        """The small part written every pass: where each machine's scoring stands."""
        return pickle.dumps(
            {"version": STATE_VERSION, "last_seq": self.last_seq, "low_seen": self.low_seen}
        )

    def load_positions(self, data: bytes) -> None:
        d = pickle.loads(data)  # noqa: S301 - our own checkpoints only
        if d.get("version") != STATE_VERSION:
            raise ValueError("not stream positions of this version")
        self.last_seq, self.low_seen = dict(d["last_seq"]), dict(d["low_seen"])

    @classmethod
    def loads(cls, data: bytes) -> PartitionState:
        d = pickle.loads(data)  # noqa: S301 - our own checkpoints only
        if d.get("version") != STATE_VERSION or not isinstance(d["state"], cls):
            raise ValueError("not a stream checkpoint of this version")
        return d["state"]  # type: ignore[no-any-return]


@dataclass
class PassResult:
    readings: int = 0
    written: int = 0
    machines: int = 0


@dataclass
class StreamScorer:
    worker: str
    partitions: int
    low: float
    cfg: StreamConfig = StreamConfig()
    states: dict[int, tuple[int, PartitionState]] = field(default_factory=dict)
    full_saved: dict[int, float] = field(default_factory=dict)  # partition -> monotonic time

    def run_pass(
        self,
        conn: Connection,
        partitions: dict[int, dict[str, list[str]]],
        types: dict[str, MachineType],
        since: datetime,
        started_at: datetime | None = None,
    ) -> PassResult:
        """Score the new readings of the held partitions (partition -> type -> machine ids).

        One transaction for the whole pass (a few round trips, whatever the partition count):
        fence every lease, lock and check every checkpoint, read the new readings of all their
        machines, then write predictions, pass log and checkpoints. ``since`` bounds the look-back
        in plant time (see :func:`stream_since`); ``started_at`` (wall clock) names the pass.
        """
        started_at = started_at or wall_now()
        res = PassResult()
        with conn.transaction():
            fenced = leases.fence_many(conn, SERVICE, self.worker, list(partitions))
            for p in set(self.states) - set(fenced):
                self.states.pop(p, None)  # not ours (any more): reload if it comes back
                self.full_saved.pop(p, None)
            if not fenced:
                return res
            versions = store.checkpoint_versions(conn, fenced)
            states = {p: self._state(conn, p, versions.get(p)) for p in fenced}
            part_of = {m: p for p in fenced for ms in partitions[p].values() for m in ms}
            type_of = {m: t for p in fenced for t, ms in partitions[p].items() for m in ms}
            last = {m: states[p].last_seq.get(m, -1) for m, p in part_of.items()}
            rows = store.new_readings(conn, last, since)
            res.readings = len(rows)
            by_part: dict[int, list[tuple[Any, ...]]] = {}
            for r in rows:
                by_part.setdefault(part_of[r[0]], []).append(r)
            preds: list[tuple[Any, ...]] = []
            logs: list[dict[str, Any]] = []
            checkpoints: list[tuple[int, int, int, bytes, bytes]] = []
            for p, prows in by_part.items():
                state = states[p]
                for t, chunk in _by_type(prows, type_of).items():
                    preds += self._score_type(state, types[t], chunk)
                first: dict[str, int] = {}
                for m, seq, _, _, _ in prows:
                    first.setdefault(m, seq)
                    state.last_seq[m] = seq
                res.machines += len(first)
                logs.append(
                    {
                        "partition": p,
                        "machines": list(first),
                        "first_seq": list(first.values()),
                        "last_seq": [state.last_seq[m] for m in first],
                        "readings": len(prows),
                    }
                )
                version = (versions.get(p) or 0) + 1
                now_s = clock()
                full = now_s - self.full_saved.get(p, -BASELINES_EVERY_S) >= BASELINES_EVERY_S
                if full:
                    # the first save is backdated by a share of the period that depends on the
                    # partition, so partitions come due in different passes, not all in one
                    stagger = (p % STAGGER) / STAGGER if p not in self.full_saved else 0.0
                    self.full_saved[p] = now_s - stagger * BASELINES_EVERY_S
                baselines = state.dumps() if full or versions.get(p) is None else b""
                checkpoints.append(
                    (p, self.partitions, version, baselines, state.dumps_positions())
                )
                self.states[p] = (version, state)
            res.written = store.insert_stream_predictions(conn, preds)
            store.log_passes(conn, service=SERVICE, worker=self.worker, started_at=started_at,
                             passes=logs)  # fmt: skip
            store.save_checkpoints(conn, checkpoints)
        return res

    def _state(self, conn: Connection, partition: int, version: int | None) -> PartitionState:
        held = self.states.get(partition)
        if held is not None and held[0] == version:
            return held[1]
        state = PartitionState()
        saved = store.load_checkpoint(conn, partition) if version is not None else None
        if saved is not None and saved[0] == self.partitions:
            try:
                state = PartitionState.loads(saved[2])
                if saved[3]:
                    state.load_positions(saved[3])  # newer than the baselines
            except (ValueError, pickle.UnpicklingError, AttributeError, KeyError) as exc:
                log.warning("stream checkpoint %d unusable (%s); starting fresh", partition, exc)
        self.states[partition] = (version or 0, state)
        return state

    def _score_type(
        self, state: PartitionState, t: MachineType, rows: list[tuple[Any, ...]]
    ) -> list[tuple[Any, ...]]:
        sensors = tuple(s.name for s in t.sensors)
        b = state.baselines.get(t.id)
        if b is None or b.sensors != sensors:
            ranges = np.array([s.max - s.min for s in t.sensors], dtype=float)
            b = state.baselines[t.id] = TypeBaselines(sensors, ranges)
        x = np.full((len(rows), len(sensors)), np.nan)
        col = {s: i for i, s in enumerate(sensors)}
        for i, r in enumerate(rows):
            for k, v in orjson.loads(r[4]).items():
                j = col.get(k)
                if j is not None and v is not None:
                    x[i, j] = v
        machines = [r[0] for r in rows]
        regimes = [int(r[3] or 0) for r in rows]
        sc = score_and_learn(b, machines, regimes, x, self.cfg)
        keep = policy_relevant(machines, sc.prob, sc.quality == "ok", self.low, state.low_seen)
        out = []
        for i in (int(k) for k in np.flatnonzero(keep)):
            contrib = {sensors[j]: round(float(sc.zs[i, j]), 3) for j in sc.top[i]}
            out.append((machines[i], rows[i][2], float(sc.prob[i]), float(sc.z[i]), contrib))
        return out


def stream_since(conn: Connection) -> datetime | None:
    """The oldest reading time a pass looks at: LOOKBACK before the newest reading (None: no data)."""
    newest = latest_reading_time(conn)
    return None if newest is None else newest - LOOKBACK


def _by_type(
    rows: list[tuple[Any, ...]], type_of: dict[str, str]
) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    for r in rows:
        out.setdefault(type_of[r[0]], []).append(r)
    return out

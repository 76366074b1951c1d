"""History import: a plant's historian export (readings) and CMMS log (events) into the database.

Readings go through the one readings writer (:func:`forewarn.storage.readings.merge_readings`,
COPY into a staging table) one batch per transaction, so memory is bounded by the batch and an
interrupted import is finished by running it again. Every imported reading's key is
(machine, seq = event time in epoch milliseconds, ts): the same row imported twice is the same key,
and a reading whose values are already stored is counted as a duplicate and left alone. Rows that
cannot be stored are rejected with a reason code (the contract's where one applies) and written to
a rejects file with their row number.

Reason codes: ``unknown_machine``, ``bad_timestamp``, ``out_of_range_timestamp``, ``not_a_number``,
``non_finite``, ``out_of_bounds``, ``unknown_sensor``, ``no_values``; events also
``unknown_kind``, ``unknown_failure_mode``, ``end_before_start``, ``bad_cost``.
"""

from __future__ import annotations

import csv
import logging
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import orjson
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import Connection
from pydantic import BaseModel, ConfigDict, Field

from forewarn.assets import MachineSpec
from forewarn.contract import MAINTENANCE_KINDS, MIN_TS, Event
from forewarn.errors import InputError
from forewarn.storage.assets import load_registry, machine_specs
from forewarn.storage.readings import (
    copy_new_readings,
    insert_events,
    merge_readings,
    readings_overlap,
)
from ingest.import_files import (
    BATCH_ROWS,
    ImportMapping,
    columns_of,
    load_mapping,
    parse_times,
    read_arrow,
    read_batches,
    to_numbers,
)

log = logging.getLogger(__name__)
Progress = Callable[[int], None]
_MS_PER_US = 1000


@dataclass
class ImportSummary:
    """What an import did; ``rows`` = data rows read = stored + duplicates + rejected."""

    file: str
    shape: str
    rows: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    rejects_file: str | None = None
    machines: set[str] = field(default_factory=set)
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "shape": self.shape,
            "rows": self.rows,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "rejected_by_reason": dict(self.reasons.most_common()),
            "rejects_file": self.rejects_file,
            "machines": len(self.machines),
            "first_ts": self.first_ts.isoformat() if self.first_ts else None,
            "last_ts": self.last_ts.isoformat() if self.last_ts else None,
            "seconds": round(self.seconds, 2),
            "rows_per_s": round(self.rows / self.seconds) if self.seconds > 0 else None,
        }


class _Rejects:
    """Rejected rows as CSV (row, machine, ts, reason, detail); the file is created on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: IO[str] | None = None
        self._w: Any = None

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self._f is None:
            self._f = self.path.open("w", encoding="utf-8", newline="")
            self._w = csv.writer(self._f)
            self._w.writerow(["row", "machine", "ts", "reason", "detail"])
        self._w.writerows(rows)

    def close(self) -> str | None:
        if self._f is None:
            return None
        self._f.close()
        return str(self.path)


class _Verdicts:
    """Per-row reason codes for one batch; the first reason found for a row is kept."""

    def __init__(self, n: int) -> None:
        self.reason = np.full(n, None, dtype=object)
        self.detail = np.full(n, "", dtype=object)

    def reject(self, mask: Any, code: str, fmt: str, *args: Any) -> None:
        """Reject rows in ``mask`` not rejected yet; detail = ``fmt`` with ``args`` (an array
        argument gives the row's element)."""
        idx = np.flatnonzero(np.asarray(mask, dtype=bool) & (self.reason == None))  # noqa: E711
        for i in idx.tolist():
            self.reason[i] = code
            self.detail[i] = fmt.format(*(a[i] if isinstance(a, np.ndarray) else a for a in args))

    @property
    def ok(self) -> np.ndarray:
        return np.asarray(self.reason == None)  # noqa: E711 (elementwise)


def _specs(conn: Connection) -> tuple[dict[str, MachineSpec], set[str]]:
    """Machine specs with their history, and every sensor name of any type or version."""
    specs = machine_specs(conn)
    names = {s.name for t in load_registry(conn).types for s in t.sensors}
    names.update(n for spec in specs.values() for _, old in spec.earlier for n in old.bounds)
    return specs, names


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _row_specs(
    machine: np.ndarray, ts: pd.Series, specs: dict[str, MachineSpec]
) -> tuple[np.ndarray, list[MachineSpec]]:
    """Per row, the index in the returned list of the spec in effect at the row's time (-1 for an
    unknown machine). A machine's rows from before its newest registry change get the spec of then
    (:meth:`MachineSpec.at`, vectorised); specs that validate alike share one index, so a batch is
    checked once per type version, not per machine."""
    table: list[MachineSpec] = []
    by_key: dict[tuple[Any, ...], int] = {}
    by_id: dict[int, int] = {}

    def pos(spec: MachineSpec) -> int:
        got = by_id.get(id(spec))
        if got is None:
            key = (spec.type_id, tuple(sorted(spec.bounds.items())))
            got = by_key.setdefault(key, len(table))
            if got == len(table):
                table.append(spec)
            by_id[id(spec)] = got
        return got

    codes, uniques = pd.factorize(pd.Series(machine, dtype=object), use_na_sentinel=True)
    known = [specs.get(m) for m in uniques]
    current = np.array([-1 if s is None else pos(s) for s in known] + [-1], dtype=np.int64)
    out = current[codes]  # code -1 (a missing machine) picks the trailing -1
    if not any(s is not None and s.earlier for s in known):
        return out, table
    never = np.iinfo(np.int64).min
    since = np.array(
        [never if s is None or s.since is None else (s.since - _EPOCH) // _US for s in known],
        dtype=np.int64,
    )
    valid = ts.notna().to_numpy() & (codes >= 0)
    t = np.where(valid, _ts_us(ts), never)
    old = valid & (t < since[np.where(codes >= 0, codes, 0)])
    # machines with the same history (a type's versions) are looked up together
    histories: dict[tuple[tuple[datetime, int], ...], int] = {}
    group = np.full(len(known) + 1, -1, dtype=np.int64)
    for c in np.unique(codes[old]).tolist():
        spec = known[c]
        assert spec is not None
        key = tuple((vf, pos(e)) for vf, e in spec.earlier)
        group[c] = histories.setdefault(key, len(histories))
    row_group = group[codes]
    for key, g in histories.items():
        rows = np.flatnonzero(old & (row_group == g))
        starts = np.array([(vf - _EPOCH) // _US for vf, _ in key], dtype=np.int64)
        k = np.maximum(np.searchsorted(starts, t[rows], side="right") - 1, 0)
        out[rows] = np.array([i for _, i in key], dtype=np.int64)[k]
    return out, table


def _ts_us(ts: pd.Series) -> np.ndarray:
    """Microseconds since the epoch of UTC timestamps (NaT as the smallest int64)."""
    return np.asarray(ts.dt.tz_localize(None).to_numpy().astype("datetime64[us]").astype(np.int64))


def _resolve_shape(mapping: ImportMapping, columns: list[str]) -> str:
    if mapping.shape != "auto":
        return mapping.shape
    return "long" if mapping.sensor in columns and mapping.value in columns else "wide"


def _require(columns: list[str], name: str, what: str, path: Path) -> None:
    if name not in columns:
        raise InputError(
            f"{path}: no column {name!r} for the {what} (columns: {', '.join(columns[:12])}"
            f"{', ...' if len(columns) > 12 else ''}); map it with a mapping file or a flag"
        )


def _common_checks(
    df: pd.DataFrame,
    mapping: ImportMapping,
    specs: dict[str, MachineSpec],
    window: tuple[datetime, datetime],
) -> tuple[_Verdicts, np.ndarray, pd.Series]:
    n = len(df)
    v = _Verdicts(n)
    if mapping.machine_id is not None:
        machine = np.full(n, mapping.machine_id, dtype=object)
    else:
        machine = df[mapping.machine].astype(object).to_numpy()
    known = np.fromiter((m in specs for m in machine), dtype=bool, count=n)
    v.reject(~known, "unknown_machine", "machine {!r} is not registered", machine)
    ts = parse_times(df[mapping.ts], mapping)
    raw_ts = df[mapping.ts].to_numpy()
    v.reject(
        ts.isna().to_numpy(),
        "bad_timestamp",
        "{}={!r} is not a time{} (or ambiguous/nonexistent in {})",
        mapping.ts,
        raw_ts,
        f" in format {mapping.ts_format!r}" if mapping.ts_format else "",
        mapping.timezone,
    )
    v.reject(
        ((ts < pd.Timestamp(window[0])) | (ts > pd.Timestamp(window[1]))).fillna(False).to_numpy(),
        "out_of_range_timestamp",
        "{} is outside [{}, {}]",
        raw_ts,
        window[0].isoformat(),
        window[1].isoformat(),
    )
    return v, machine, ts


def _ts_text(ts: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(ISO text for COPY, seq = epoch milliseconds) of UTC timestamps."""
    us = ts.dt.tz_localize(None).to_numpy().astype("datetime64[us]")
    text = np.datetime_as_string(us, unit="us", timezone="UTC")
    seq = us.astype(np.int64) // _MS_PER_US
    return text, seq


def _note_span(summary: ImportSummary, ts: pd.Series, machines: np.ndarray) -> None:
    if len(ts) == 0:
        return
    lo, hi = ts.min().to_pydatetime(), ts.max().to_pydatetime()
    summary.first_ts = lo if summary.first_ts is None else min(summary.first_ts, lo)
    summary.last_ts = hi if summary.last_ts is None else max(summary.last_ts, hi)
    summary.machines.update(pd.unique(machines).tolist())


# COPY text format: these characters would need escaping (and '"' breaks the built JSON)
_COPY_UNSAFE = re.compile(r'[\\\t\n\r"]')
_NULL = "\\N"


@dataclass
class _Prepared:
    """One batch ready for the writer: COPY text-format rows and what is needed to count them."""

    payload: bytes
    rows: int  # accepted source rows in it
    spans: list[tuple[str, datetime, datetime]]  # per machine: first and last time in the batch
    counts: dict[tuple[str, int], int] | None = None  # source rows per key when keys repeat


def _spans(machines: np.ndarray, ts: pd.Series) -> list[tuple[str, datetime, datetime]]:
    """(machine, first time, last time) of each machine in a batch."""
    g = pd.Series(_ts_us(ts), index=machines).groupby(level=0)
    lo, hi = g.min(), g.max()
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return [
        (
            str(m),
            epoch + timedelta(microseconds=int(lo[m])),
            epoch + timedelta(microseconds=int(hi[m])),
        )
        for m in lo.index
    ]


def _copy_text(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _payload(
    keys: list[tuple[str, int]],
    ts_text: list[str],
    regimes: list[int | None],
    values: list[dict[str, float]],
) -> bytes:
    """COPY text for readings built in Python (the general path; one per key)."""
    dumps = orjson.dumps
    lines = [
        "\t".join(
            (
                _copy_text(m),
                str(q),
                t,
                _NULL if r is None else str(r),
                _copy_text(dumps(v).decode()),
            )
        )
        for (m, q), t, r, v in zip(keys, ts_text, regimes, values, strict=True)
    ]
    return ("\n".join(lines) + "\n").encode()


def _store(conn: Connection, prep: _Prepared) -> int:
    """Write one prepared batch and commit; returns source rows stored.

    A batch none of whose machines has a reading in its time span is COPied straight into the
    table; otherwise (or when a concurrent writer got there first) it is merged through the
    staging table, which skips what is stored already.
    """
    stored: int | None = None
    if prep.counts is None and not readings_overlap(conn, prep.spans):
        try:
            with conn.transaction():
                stored = copy_new_readings(conn, prep.payload)
        except psycopg.errors.UniqueViolation:
            log.info("readings appeared while importing; merging this batch instead")
    if stored is None:
        changed = merge_readings(conn, prep.payload)
        stored = len(changed) if prep.counts is None else sum(prep.counts[k] for k in changed)
    conn.commit()
    return stored


class _Writer:
    """Stores prepared batches on its own thread while the next one is parsed (one in flight)."""

    def __init__(self, conn: Connection, summary: ImportSummary, progress: Progress | None):
        self.conn, self.summary, self.progress = conn, summary, progress
        self.error: BaseException | None = None
        self._q: queue.Queue[tuple[_Prepared | None, int] | None] = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._run, name="import-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._q.get()) is not None:
            if self.error is not None:
                continue  # drain after a failure; submit/close re-raise it
            prep, read = item
            try:
                if prep is not None:
                    stored = _store(self.conn, prep)
                    self.summary.stored += stored
                    self.summary.duplicates += prep.rows - stored
                if self.progress is not None:
                    self.progress(read)
            except BaseException as exc:  # re-raised in the importing thread
                self.error = exc

    def submit(self, prep: _Prepared | None, read: int) -> None:
        if self.error is not None:
            raise self.error
        self._q.put((prep, read))

    def close(self) -> None:
        self._q.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error


def _floats(arr: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(float64 arrow array with nulls, the same as numpy with NaN, mask of non-numbers)."""
    try:
        f = pc.cast(arr, pa.float64())
        return f, f.to_numpy(zero_copy_only=False), np.zeros(len(arr), bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        vals, bad = to_numbers(arr.to_pandas())
        vals = np.where(bad, np.nan, vals)
        return pa.array(vals, from_pandas=True), vals, bad


def _prepare_wide(
    start: int,
    batch: pa.RecordBatch,
    mapping: ImportMapping,
    sensors: list[tuple[str, str]],
    specs: dict[str, MachineSpec],
    window: tuple[datetime, datetime],
    summary: ImportSummary,
) -> tuple[_Prepared | None, list[tuple[Any, ...]]]:
    col = {name: i for i, name in enumerate(batch.schema.names)}
    n = batch.num_rows
    meta = [c for c in (mapping.ts, mapping.machine, mapping.regime) if c is not None and c in col]
    df = pd.DataFrame({c: batch.column(col[c]).to_pandas() for c in meta})
    df.index = pd.RangeIndex(start, start + n)
    v, machine, ts = _common_checks(df, mapping, specs, window)
    names = [name for _, name in sensors]
    arrays: list[pa.Array] = []
    matrix = np.empty((n, len(sensors)))
    for j, (c, _name) in enumerate(sensors):
        f, vals, bad = _floats(batch.column(col[c]))
        if bad.any():
            raw = batch.column(col[c]).to_pandas().to_numpy()
            v.reject(bad, "not_a_number", "{}={!r} is not a number", c, raw)
        arrays.append(f)
        matrix[:, j] = vals
    v.reject(np.isinf(matrix).any(axis=1), "non_finite", "a value is infinite")
    ok = v.ok
    # each row's bounds per sensor column, from the spec in effect at its time (one pass)
    which, table = _row_specs(machine, ts, specs)
    lo, hi = np.zeros((len(table) + 1, len(names))), np.zeros((len(table) + 1, len(names)))
    declared = np.zeros((len(table) + 1, len(names)), dtype=bool)
    for k, spec in enumerate(table):
        for j, name in enumerate(names):
            if name in spec.bounds:
                declared[k, j] = True
                lo[k, j], hi[k, j] = spec.bounds[name]
    type_of = np.array([s.type_id for s in table] + [""], dtype=object)[which]
    for j, name in enumerate(names):
        col_v = matrix[:, j]
        present = ok & ~np.isnan(col_v)
        lo_j, hi_j = lo[which, j], hi[which, j]
        unknown = present & ~declared[which, j]
        v.reject(unknown, "unknown_sensor", "{} is not a sensor of {}", name, type_of)
        with np.errstate(invalid="ignore"):
            oob = present & ~unknown & ((col_v < lo_j) | (col_v > hi_j))
        v.reject(oob, "out_of_bounds", "{}={:g} outside [{:g}, {:g}]", name, col_v, lo_j, hi_j)
    v.reject(np.isnan(matrix).all(axis=1), "no_values", "every sensor is empty")
    regime = None
    if mapping.regime is not None:
        regime, bad_r = to_numbers(df[mapping.regime])
        v.reject(bad_r, "not_a_number", "{} is not a number", mapping.regime)
    rejects = _reject_rows(df, v, machine, mapping)
    ok = v.ok
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return None, rejects
    ts_ok = ts.iloc[idx]
    text, seq = _ts_text(ts_ok)
    mach = machine[idx]
    _note_span(summary, ts_ok, mach)
    machines = [str(m) for m in pd.unique(mach)]
    spans = _spans(mach, ts_ok)
    regimes: list[int | None] = (
        [None if np.isnan(r) else int(r) for r in regime[idx]]
        if regime is not None
        else [None] * len(idx)
    )
    repeated = bool(pd.DataFrame({"m": mach, "q": seq}).duplicated().any())
    unsafe = any(_COPY_UNSAFE.search(m) for m in machines + names)
    if repeated or unsafe:  # the general path, in Python
        keys = list(zip(mach.tolist(), seq.tolist(), strict=True))
        values = [
            {name: x for name, x in zip(names, row, strict=True) if x == x}
            for row in matrix[idx].tolist()
        ]
        counts: dict[tuple[str, int], int] | None = None
        if repeated:  # the same machine and time twice in a batch: one reading
            keys, text_l, regimes, values, counts_l = _merge_same_keys(
                keys, text.tolist(), regimes, values
            )
            counts = dict(zip(keys, counts_l, strict=True))
        else:
            text_l = text.tolist()
        payload = _payload(keys, text_l, regimes, values)
        return _Prepared(payload, len(idx), spans, counts), rejects
    # the fast path: the COPY text built column-wise by Arrow, no Python object per value
    mask = pa.array(ok)
    pieces = [
        pc.binary_join_element_wise(
            f'"{name}":', pc.cast(pc.filter(arr, mask), pa.string()), "", null_handling="emit_null"
        )
        for name, arr in zip(names, arrays, strict=True)
    ]
    body = pc.binary_join_element_wise(*pieces, ",", null_handling="skip")
    objects = pc.binary_join_element_wise("{", body, "}", "")
    regime_text = pa.array([_NULL if r is None else str(r) for r in regimes], pa.string())
    lines = pc.binary_join_element_wise(
        pa.array(mach.tolist(), pa.string()),
        pc.cast(pa.array(seq), pa.string()),
        pa.array(text, pa.string()),
        regime_text,
        objects,
        "\t",
    )
    payload = ("\n".join(lines.to_pylist()) + "\n").encode()
    return _Prepared(payload, len(idx), spans), rejects


def _merge_same_keys(
    keys: list[tuple[str, int]],
    text: list[str],
    regimes: list[int | None],
    values: list[dict[str, float]],
) -> tuple[list[tuple[str, int]], list[str], list[int | None], list[dict[str, float]], list[int]]:
    groups: dict[tuple[str, int], list[Any]] = {}
    for key, t, r, val in zip(keys, text, regimes, values, strict=True):
        g = groups.get(key)
        if g is None:
            groups[key] = [t, r, dict(val), 1]
        else:
            g[2].update(val)
            g[3] += 1
    ks = list(groups)
    return (
        ks,
        [groups[k][0] for k in ks],
        [groups[k][1] for k in ks],
        [groups[k][2] for k in ks],
        [groups[k][3] for k in ks],
    )


def _prepare_long(
    df: pd.DataFrame,
    mapping: ImportMapping,
    specs: dict[str, MachineSpec],
    window: tuple[datetime, datetime],
    summary: ImportSummary,
) -> tuple[_Prepared | None, list[tuple[Any, ...]]]:
    v, machine, ts = _common_checks(df, mapping, specs, window)
    raw_sensor = df[mapping.sensor].astype(object).to_numpy()
    sensor = np.array(
        [mapping.sensors.get(str(s), str(s)) if s is not None else "" for s in raw_sensor],
        dtype=object,
    )
    vals, bad = to_numbers(df[mapping.value])
    raw = df[mapping.value].to_numpy()
    v.reject(bad, "not_a_number", "{}={!r} is not a number", sensor, raw)
    v.reject(np.isnan(vals), "no_values", "{} is empty", mapping.value)
    v.reject(np.isinf(vals), "non_finite", "{} is infinite", sensor)
    which, table = _row_specs(machine, ts, specs)
    for i in np.flatnonzero(v.ok):
        spec = table[which[i]]
        b = spec.bounds.get(sensor[i])
        if b is None:
            v.reject(
                np.arange(len(df)) == i,
                "unknown_sensor",
                "{} is not a sensor of {}",
                sensor,
                spec.type_id,
            )
        elif not b[0] <= vals[i] <= b[1]:
            v.reject(
                np.arange(len(df)) == i,
                "out_of_bounds",
                "{}={:g} outside [{:g}, {:g}]",
                sensor,
                vals,
                b[0],
                b[1],
            )
    idx = np.flatnonzero(v.ok)
    ts_ok = ts.iloc[idx]
    text, seq = _ts_text(ts_ok)
    _note_span(summary, ts_ok, machine[idx])
    groups: dict[tuple[str, int], list[Any]] = {}
    for m, q, t, s, x in zip(
        machine[idx].tolist(),
        seq.tolist(),
        text.tolist(),
        sensor[idx].tolist(),
        vals[idx].tolist(),
        strict=True,
    ):
        g = groups.get((m, q))
        if g is None:
            groups[(m, q)] = [t, {s: x}, 1]
        else:
            g[1][s] = x
            g[2] += 1
    rejects = _reject_rows(df, v, machine, mapping)
    if not groups:
        return None, rejects
    keys = list(groups)
    payload = _payload(
        keys,
        [groups[k][0] for k in keys],
        [None] * len(keys),
        [groups[k][1] for k in keys],
    )
    counts = {k: groups[k][2] for k in keys}
    return _Prepared(payload, len(idx), _spans(machine[idx], ts_ok), counts), rejects


def _reject_rows(
    df: pd.DataFrame, v: _Verdicts, machine: np.ndarray, mapping: ImportMapping
) -> list[tuple[Any, ...]]:
    bad = np.flatnonzero(~v.ok)
    raw_ts = df[mapping.ts].to_numpy()
    rows = df.index.to_numpy()
    return [(int(rows[i]), machine[i], raw_ts[i], v.reason[i], v.detail[i]) for i in bad.tolist()]


def import_readings(
    conn: Connection,
    path: Path,
    mapping: ImportMapping,
    *,
    now: datetime,
    max_future_s: float = 300.0,
    min_ts: datetime = MIN_TS,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
    batch_rows: int = BATCH_ROWS,
) -> ImportSummary:
    """Import a historian export (CSV or Parquet, wide or long); see the module docstring."""
    columns = columns_of(path, mapping)
    shape = _resolve_shape(mapping, columns)
    specs, all_sensors = _specs(conn)
    _require(columns, mapping.ts, "timestamp", path)
    if mapping.machine_id is None:
        _require(
            columns, mapping.machine, "machine id (or give one machine with --machine-id)", path
        )
    elif mapping.machine_id not in specs:
        raise InputError(f"--machine-id: machine {mapping.machine_id!r} is not registered")
    sensors: list[tuple[str, str]] = []
    if shape == "long":
        _require(columns, mapping.sensor, "sensor name", path)
        _require(columns, mapping.value, "value", path)
    else:
        skip = {mapping.machine, mapping.ts, *(mapping.regime or "",), *mapping.ignore}
        for col in columns:
            if col in skip:
                continue
            name = mapping.sensors.get(col, col)
            if name not in all_sensors:
                raise InputError(
                    f"{path}: column {col!r} is not a sensor of any registered machine type;"
                    " map it to one ([sensors] in the mapping file, or --sensor COLUMN=SENSOR)"
                    " or leave it out (--ignore COLUMN)"
                )
            sensors.append((col, name))
        if not sensors:
            raise InputError(f"{path}: no sensor columns (wide shape)")
    summary = ImportSummary(file=str(path), shape=shape)
    rejects = _Rejects(rejects_path or path.with_name(path.name + ".rejects.csv"))
    window = (min_ts, now + timedelta(seconds=max_future_s))
    t0 = time.monotonic()
    writer = _Writer(conn, summary, progress)
    try:
        for start, batch in read_arrow(path, mapping, columns, batch_rows):
            if shape == "long":
                df = batch.to_pandas()
                df.index = pd.RangeIndex(start, start + len(df))
                prep, bad = _prepare_long(df, mapping, specs, window, summary)
            else:
                prep, bad = _prepare_wide(start, batch, mapping, sensors, specs, window, summary)
            summary.rows += batch.num_rows
            summary.rejected += len(bad)
            summary.reasons.update(r[3] for r in bad)
            rejects.write(bad)
            writer.submit(prep, batch.num_rows)
    finally:
        try:
            writer.close()
        finally:
            summary.rejects_file = rejects.close()
            summary.seconds = time.monotonic() - t0
    return summary


# ---- events --------------------------------------------------------------------------------


class EventMapping(BaseModel):
    """Columns of a CMMS export (failures and maintenance work orders)."""

    model_config = ConfigDict(extra="forbid")
    machine: str = "machine"
    start: str = "start"
    end: str = "end"
    kind: str = "kind"
    failure_mode: str = "failure_mode"
    cost: str = "cost"
    work_order: str = "work_order"
    ts_format: str | None = None
    timezone: str = "UTC"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    kinds: dict[str, Literal["failure", "repair", "preventive", "inspection"]] = Field(
        default_factory=dict, description="The CMMS's kind -> failure|repair|preventive|inspection"
    )


KIND_ALIASES: dict[str, str] = {
    "failure": "failure",
    "breakdown": "failure",
    "corrective": "failure",
    "unplanned": "failure",
    "repair": "repair",
    "preventive": "preventive",
    "planned": "preventive",
    "pm": "preventive",
    "inspection": "inspection",
}


def load_event_mapping(path: Path | None, overrides: dict[str, Any]) -> EventMapping:
    """The CMMS mapping file (TOML) with flags on top."""
    return load_mapping(path, overrides, EventMapping)


def _events_of_row(
    machine: str,
    spec: MachineSpec,
    modes: tuple[str, ...],
    start: pd.Timestamp,
    end: pd.Timestamp | None,
    kind: str,
    mode: str | None,
    cost: float | None,
    work_order: str | None,
) -> list[Event]:
    start_dt = start.to_pydatetime()
    end_dt = None if end is None else end.to_pydatetime()
    duration = None if end_dt is None else (end_dt - start_dt).total_seconds()
    detail: dict[str, Any] = {"source": "import"}
    if cost is not None:
        detail["cost"] = cost
    if work_order:
        detail["work_order"] = work_order
    ms = int(start.value // 1_000_000)
    out: list[Event] = []
    if kind == "failure":
        # the cost goes on the repair that ends the downtime (on the failure when there is none)
        fdetail = {k: x for k, x in detail.items() if k != "cost" or end_dt is None}
        out.append(
            Event(
                spec.site_id,
                machine,
                start_dt,
                ms * 2,
                "failure",
                mode=mode or "unknown",
                detail=fdetail,
            )
        )
        if end_dt is not None:
            out.append(
                Event(
                    spec.site_id,
                    machine,
                    end_dt,
                    int(end.value // 1_000_000) * 2 + 1,  # type: ignore[union-attr]
                    "maintenance",
                    kind="repair",
                    duration_s=duration,
                    detail={**detail, "trigger": "failure"},
                )
            )
        return out
    at = end_dt or start_dt
    at_ms = int((end or start).value // 1_000_000)
    trigger = "schedule" if kind == "preventive" else "order"
    out.append(
        Event(
            spec.site_id,
            machine,
            at,
            at_ms * 2 + 1,
            "maintenance",
            kind=kind,
            duration_s=duration,
            detail={**detail, "trigger": trigger},
        )
    )
    return out


def import_events(
    conn: Connection,
    path: Path,
    mapping: EventMapping,
    *,
    now: datetime,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import a CMMS log: a failure row becomes a failure event at its start and a repair at its
    end; preventive, inspection and repair rows become maintenance events at their end."""
    reg = load_registry(conn)
    specs = machine_specs(conn)
    modes = {t.id: t.failure_modes for t in reg.types}
    readmap = ImportMapping(
        ts=mapping.start,
        machine=mapping.machine,
        ts_format=mapping.ts_format,
        timezone=mapping.timezone,
        delimiter=mapping.delimiter,
    )
    columns = columns_of(path, readmap)
    for name, what in (
        (mapping.machine, "machine"),
        (mapping.start, "start time"),
        (mapping.kind, "kind"),
    ):
        _require(columns, name, what, path)
    kinds = {k.lower(): v for k, v in {**KIND_ALIASES, **mapping.kinds}.items()}
    summary = ImportSummary(file=str(path), shape="events")
    rejects = _Rejects(rejects_path or path.with_name(path.name + ".rejects.csv"))
    t0 = time.monotonic()
    try:
        for df in read_batches(path, readmap, columns):
            v, machine, start = _common_checks(df, readmap, specs, (MIN_TS, now))
            end = (
                parse_times(df[mapping.end], readmap)
                if mapping.end in columns
                else pd.Series(pd.NaT, index=df.index, dtype="datetime64[us, UTC]")
            )
            has_end = (
                df[mapping.end].notna().to_numpy()
                if mapping.end in columns
                else np.zeros(len(df), bool)
            )
            v.reject(
                has_end & end.isna().to_numpy(),
                "bad_timestamp",
                "{} is not a time",
                mapping.end,
            )
            v.reject(
                (end < start).fillna(False).to_numpy(),
                "end_before_start",
                "end is before start",
            )
            raw_kind = df[mapping.kind].astype(object).to_numpy()
            kind = np.array([kinds.get(str(k).strip().lower(), "") for k in raw_kind], dtype=object)
            v.reject(
                kind == "",
                "unknown_kind",
                "{}={!r}; expected one of {} or a [kinds] mapping",
                mapping.kind,
                raw_kind,
                sorted(kinds),
            )
            fmode = (
                df[mapping.failure_mode].astype(object).to_numpy()
                if mapping.failure_mode in columns
                else np.full(len(df), None, dtype=object)
            )
            for f in np.flatnonzero(v.ok & (kind == "failure")).tolist():
                # the modes of the machine's type as it was when the failure happened
                known_modes = specs[machine[f]].at(start.iloc[f].to_pydatetime()).failure_modes
                if fmode[f] is not None and known_modes and fmode[f] not in known_modes:
                    v.reject(
                        np.arange(len(df)) == f,
                        "unknown_failure_mode",
                        "{!r} is not one of {}",
                        fmode,
                        sorted(known_modes),
                    )
            cost = np.full(len(df), np.nan)
            if mapping.cost in columns:
                cost, bad = to_numbers(df[mapping.cost])
                v.reject(bad | (cost < 0), "bad_cost", "{} must be a number >= 0", mapping.cost)
            wo = (
                df[mapping.work_order].astype(object).to_numpy()
                if mapping.work_order in columns
                else None
            )
            events: list[Event] = []
            idx = np.flatnonzero(v.ok)
            for i in idx.tolist():
                events += _events_of_row(
                    machine[i],
                    specs[machine[i]],
                    modes.get(specs[machine[i]].type_id, ()),
                    start.iloc[i],
                    None if pd.isna(end.iloc[i]) else end.iloc[i],
                    kind[i],
                    fmode[i],
                    None if np.isnan(cost[i]) else float(cost[i]),
                    None if wo is None or wo[i] is None else str(wo[i]),
                )
            _note_span(summary, start.iloc[idx], machine[idx])
            stored = insert_events(conn, events)
            conn.commit()
            bad_rows = _reject_rows(df, v, machine, readmap)
            summary.rows += len(df)
            summary.stored += stored
            summary.duplicates += len(events) - stored
            summary.rejected += len(bad_rows)
            summary.reasons.update(r[3] for r in bad_rows)
            rejects.write(bad_rows)
            if progress is not None:
                progress(len(df))
    finally:
        summary.rejects_file = rejects.close()
        summary.seconds = time.monotonic() - t0
    return summary


__all__ = [
    "MAINTENANCE_KINDS",
    "EventMapping",
    "ImportSummary",
    "import_events",
    "import_readings",
    "load_event_mapping",
]

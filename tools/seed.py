"""Seed a database with a realistic stretch of plant history, fast (COPY): for tests and the benchmark.

For ``machines`` machines over ``days`` days ending at ``now`` it writes the asset registry, readings
(the default factory's cadence, 5 minutes), champion predictions (with contributions), a challenger
for the last two days (CNC only), failures and maintenance, alerts in every state with their
transitions, one model per machine type (CNC with a challenger), online model checkpoints, and a
few drift detections. Deterministic for a given ``seed``.

Scenarios per machine: most are healthy; some degrade towards a failure at the end of the window
(open or acknowledged alerts), some failed during the window (a failure with downtime, readings
missing while down), some were caught (an alert resolved by planned maintenance), some raised a
false alarm (dismissed), and a few had preventive maintenance.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from psycopg import Connection

from forewarn.assets import AssetRegistry, Costs, Line, Machine, MachineType, SensorSpec, Site
from forewarn.storage import alerts as alert_store
from forewarn.storage import audit, model_registry
from forewarn.storage.assets import upsert_registry
from forewarn.storage.bulk import copy_text

READING_EVERY_S = 300  # the default factory's telemetry interval
PREDICTION_EVERY_S = 900
CHALLENGER_DAYS = 2.0

# name, unit, min, max, healthy mean, noise sd, change at full wear
_CNC = (
    ("air_temp", "K", 285.0, 315.0, 300.0, 0.4, 1.0),
    ("process_temp", "K", 290.0, 335.0, 310.0, 0.5, 9.0),
    ("rotational_speed", "rpm", 0.0, 3000.0, 1500.0, 30.0, -180.0),
    ("torque", "Nm", 0.0, 100.0, 40.0, 3.0, 14.0),
    ("tool_wear", "min", 0.0, 300.0, 60.0, 0.5, 150.0),
)
_PUMP = (
    ("vibration_rms", "mm/s", 0.0, 50.0, 2.5, 0.3, 9.0),
    ("bearing_temp", "degC", -20.0, 150.0, 55.0, 1.0, 30.0),
    ("flow", "m3/h", 0.0, 500.0, 220.0, 6.0, -40.0),
    ("pressure", "bar", 0.0, 40.0, 8.0, 0.2, -1.5),
    ("motor_current", "A", 0.0, 200.0, 60.0, 2.0, 18.0),
)
TYPES: dict[
    str,
    tuple[
        str, tuple[tuple[str, str, float, float, float, float, float], ...], tuple[str, ...], Costs
    ],
] = {
    "cnc": (
        "CNC milling machine",
        _CNC,
        ("tool_wear", "heat", "power", "overstrain", "random"),
        Costs(800.0, 2500.0, 400.0, 100.0, 6.0, 1.5),
    ),
    "pump": (
        "Centrifugal pump",
        _PUMP,
        ("bearing", "seal", "random"),
        Costs(1200.0, 4000.0, 600.0, 150.0, 10.0, 2.0),
    ),
}
SCENARIOS = ("healthy", "failing", "failed", "caught", "false_alarm", "preventive")
# Probability of each scenario for a machine (sums to 1).
SCENARIO_P = (0.62, 0.08, 0.08, 0.1, 0.06, 0.06)


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime

    def grid(self, every_s: int) -> np.ndarray:
        """Epoch seconds from start (inclusive) to end (exclusive)."""
        s = int(self.start.timestamp())
        return np.arange(s, int(self.end.timestamp()), every_s, dtype=np.int64)


def seed_registry(machines: int) -> AssetRegistry:
    """Two sites with a machining and a utilities line; machines alternate CNC mills and pumps."""
    sites = [Site("s1", "North plant"), Site("s2", "South plant")]
    lines = [
        Line(f"{s.id}-{ln}", s.id, name)
        for s in sites
        for ln, name in (("l1", "Machining"), ("l2", "Utilities"))
    ]
    types = [
        MachineType(
            tid, name, tuple(SensorSpec(n, u, lo, hi) for n, u, lo, hi, *_ in sensors), modes, costs
        )
        for tid, (name, sensors, modes, costs) in TYPES.items()
    ]
    ms = []
    for i in range(machines):
        site = sites[i % 2].id
        tid = "cnc" if (i // 2) % 2 == 0 else "pump"
        line = f"{site}-l1" if tid == "cnc" else f"{site}-l2"
        ms.append(Machine(f"{site}-{tid}-{i:04d}", site, line, tid))
    return AssetRegistry(sites, lines, types, ms)


def _ts_text(epochs: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(epochs.astype("datetime64[s]"), unit="s", timezone="UTC")


@dataclass(slots=True)
class _Plan:
    machine: Machine
    scenario: str
    mode: str
    event_at: float | None  # epoch s of the failure / maintenance / alert peak
    down_s: float  # downtime after event_at (failure or maintenance)
    p0: float


def _plans(reg: AssetRegistry, win: Window, rng: np.random.Generator) -> list[_Plan]:
    start, end = win.start.timestamp(), win.end.timestamp()
    span = end - start
    plans = []
    for i, m in enumerate(reg.machines):
        _, _, modes, costs = TYPES[m.type_id]
        # the first machines cover every scenario, so that even a small plant shows each one
        scenario = (
            SCENARIOS[(i + 1) % len(SCENARIOS)]
            if i < len(SCENARIOS)
            else str(rng.choice(SCENARIOS, p=SCENARIO_P))
        )
        mode = str(rng.choice(modes[:-1]))  # 'random' failures are not predictable
        event_at: float | None = None
        down_s = 0.0
        if scenario == "failing":
            event_at = end + rng.uniform(2, 30) * 3600  # predicted failure after the window
        elif scenario == "failed":
            event_at = start + rng.uniform(0.25, 0.8) * span
            down_s = costs.repair_hours * 3600 * rng.uniform(0.8, 1.6)
        elif scenario in ("caught", "preventive"):
            event_at = start + rng.uniform(0.2, 0.85) * span
            down_s = costs.planned_hours * 3600 * rng.uniform(0.8, 1.2)
        elif scenario == "false_alarm":
            event_at = start + rng.uniform(0.2, 0.9) * span
        plans.append(_Plan(m, scenario, mode, event_at, down_s, float(rng.uniform(0.01, 0.07))))
    return plans


def _wear(p: _Plan, t: np.ndarray) -> np.ndarray:
    """Degradation in [0, 1] over time: a ramp into the event, reset after repair or maintenance."""
    w = np.zeros_like(t, dtype=float)
    if p.event_at is None or p.scenario == "preventive":
        return w
    ramp_s = {"failing": 96, "failed": 30, "caught": 30, "false_alarm": 6}[p.scenario] * 3600.0
    if p.scenario == "failing":
        return np.clip(1 - (p.event_at - t) / ramp_s, 0, 1) ** 1.5
    before = t < p.event_at
    w[before] = np.clip(1 - (p.event_at - t[before]) / ramp_s, 0, 1) ** 2
    if p.scenario == "caught":
        w[before] = np.minimum(w[before], 0.75)  # maintained before it broke
    if p.scenario == "false_alarm":
        w = np.where(
            np.abs(t - p.event_at) < ramp_s, 0.6 * np.exp(-(((t - p.event_at) / 7200) ** 2)), 0
        )
    return w


def _down(p: _Plan, t: np.ndarray) -> np.ndarray:
    if p.event_at is None or p.down_s <= 0:
        return np.zeros_like(t, dtype=bool)
    return (t >= p.event_at) & (t < p.event_at + p.down_s)


def _prob(p: _Plan, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(0, 0.01, w.shape)
    return np.clip(p.p0 + 0.93 * w + noise, 0.001, 0.999)


def _contributions(
    sensors: tuple[tuple[Any, ...], ...], wear: float, rng: np.random.Generator
) -> str:
    feats = {}
    for i, s in enumerate(sensors):
        weight = (1.0 if i in (1, 3, 4) else 0.3) * wear
        feats[f"{s[0]}__mean_6"] = round(float(weight * 0.6 + rng.normal(0, 0.02)), 4)
        feats[f"{s[0]}__slope_24"] = round(float(weight * 0.4 + rng.normal(0, 0.02)), 4)
    top = sorted(feats.items(), key=lambda kv: -abs(kv[1]))[:6]
    return json.dumps(dict(top))


def _reading_lines(
    plans: list[_Plan], win: Window, every_s: int, rng: np.random.Generator
) -> Iterable[str]:
    grid = win.grid(every_s)
    for p in plans:
        offset = int(rng.integers(0, every_s))  # machines do not report in lockstep
        t = grid + offset
        t = t[t < win.end.timestamp()]
        keep = ~_down(p, t)
        t = t[keep]
        w = _wear(p, t)
        sensors = TYPES[p.machine.type_id][1]
        cols = []
        names = []
        for name, _u, lo, hi, mean, sd, gain in sensors:
            daily = 0.3 * sd * np.sin(2 * np.pi * (t % 86400) / 86400)
            v = np.clip(mean + gain * w + daily + rng.normal(0, sd, t.shape), lo, hi)
            cols.append(np.round(v, 2).tolist())
            names.append(name)
        ts = _ts_text(t)
        mid = p.machine.id
        n0, n1, n2, n3, n4 = names
        for seq, (tt, a, b, c, d, e) in enumerate(zip(ts, *cols, strict=True), start=1):
            yield (
                f'{mid}\t{seq}\t{tt}\t\\N\t{{"{n0}": {a}, "{n1}": {b}, "{n2}": {c}, '
                f'"{n3}": {d}, "{n4}": {e}}}\n'
            )


def _prediction_lines(
    plans: list[_Plan],
    win: Window,
    every_s: int,
    versions: dict[str, dict[str, int]],
    rng: np.random.Generator,
) -> Iterable[str]:
    grid = win.grid(every_s)
    challenger_from = win.end.timestamp() - CHALLENGER_DAYS * 86400
    for p in plans:
        t = grid[~_down(p, grid)]
        w = _wear(p, t)
        prob = _prob(p, w, rng)
        rul = np.full(t.shape, float(rng.uniform(400, 1500))) * (1 - 0.5 * w)
        if p.scenario in ("failing", "failed", "caught") and p.event_at is not None:
            to_event = (p.event_at - t) / 3600.0
            # the model's estimate moves from the fleet-typical life to the real time left
            rul = np.where(to_event > 0, (1 - w) * rul + w * to_event, rul)
        rul = rul * rng.normal(1, 0.03, t.shape)
        ts = _ts_text(t)
        sensors = TYPES[p.machine.type_id][1]
        mid = p.machine.id
        challenger = versions[p.machine.type_id].get("challenger")
        quality = "ok"
        for i in range(len(t)):
            contrib = (
                _contributions(sensors, float(w[i]), rng)
                if (i % 4 == 0 or i == len(t) - 1)
                else "\\N"
            )
            r = float(rul[i])
            pr = float(prob[i])
            yield (
                f"{mid}\t{ts[i]}\tchampion\t{versions[p.machine.type_id]['champion']}\t{pr:.4f}\t{r:.2f}\t"
                f"{r * 0.75:.2f}\t{r * 1.3:.2f}\t{float(w[i]) * 0.8:.4f}\t{p.mode}\t{contrib}\t{quality}\n"
            )
            if challenger is not None and t[i] >= challenger_from:
                pc = min(max(pr * 1.05 + float(rng.normal(0, 0.02)), 0.001), 0.999)
                yield (
                    f"{mid}\t{ts[i]}\tchallenger\t{challenger}\t{pc:.4f}\t{r * 0.95:.2f}\t"
                    f"{r * 0.8:.2f}\t{r * 1.2:.2f}\t\\N\t{p.mode}\t\\N\t{quality}\n"
                )


def _severity(prob: float) -> str:
    return (
        "critical"
        if prob >= 0.9
        else "high"
        if prob >= 0.75
        else "medium"
        if prob >= 0.6
        else "low"
    )


def _events_and_alerts(
    conn: Connection,
    plans: list[_Plan],
    win: Window,
    versions: dict[str, dict[str, int]],
    rng: np.random.Generator,
) -> tuple[int, int]:
    end = win.end.timestamp()
    events: list[tuple[Any, ...]] = []
    alerts: list[dict[str, Any]] = []
    failing_seen = 0
    for p in plans:
        if p.event_at is None:
            continue
        at = datetime.fromtimestamp(p.event_at, UTC)
        sensors = TYPES[p.machine.type_id][1]
        if p.scenario == "failed":
            events.append((p.machine.id, 1, at, "failure", p.mode, None, p.down_s, {}))
            if rng.random() < 0.5:  # raised, but too late to plan the repair
                alerts.append(
                    dict(
                        p=p,
                        at=at - timedelta(hours=2),
                        prob=0.82,
                        ttf=2.0,
                        status="resolved",
                        changes=[
                            ("acknowledged", at - timedelta(hours=1)),
                            ("resolved", at + timedelta(seconds=p.down_s)),
                        ],
                        reason="failed before the planned repair",
                        # the repair followed the failure: no failure was avoided
                        detail={"action": "repair", "confirmed": False},
                    )
                )
        elif p.scenario == "caught":
            events.append((p.machine.id, 1, at, "maintenance", p.mode, "preventive", p.down_s, {}))
            raised = at - timedelta(hours=float(rng.uniform(8, 20)))
            alerts.append(
                dict(
                    p=p,
                    at=raised,
                    prob=0.72,
                    ttf=30.0,
                    status="resolved",
                    changes=[
                        ("acknowledged", raised + timedelta(hours=1)),
                        ("resolved", at + timedelta(seconds=p.down_s)),
                    ],
                    reason="planned maintenance done",
                    detail={"action": "preventive", "note": "worn part replaced"},
                )
            )
        elif p.scenario == "preventive":
            events.append((p.machine.id, 1, at, "maintenance", None, "preventive", p.down_s, {}))
        elif p.scenario == "false_alarm":
            alerts.append(
                dict(
                    p=p,
                    at=at,
                    prob=0.63,
                    ttf=40.0,
                    status="dismissed",
                    changes=[("dismissed", at + timedelta(hours=3))],
                    reason="inspected, no fault found",
                )
            )
        elif p.scenario == "failing":
            # the alert was raised when the probability first crossed 0.6
            t = win.grid(PREDICTION_EVERY_S)
            prob = _prob(p, _wear(p, t), rng)
            above = np.nonzero(prob >= 0.6)[0]
            if len(above) == 0:
                continue
            raised = datetime.fromtimestamp(float(t[above[0]]), UTC)
            final = float(prob[-1])
            ttf = max((p.event_at - end) / 3600.0, 1.0)
            failing_seen += 1  # every third one acknowledged; the first stays open
            changes = (
                [("acknowledged", raised + timedelta(minutes=30))] if failing_seen % 3 == 0 else []
            )
            alerts.append(
                dict(
                    p=p,
                    at=raised,
                    prob=final,
                    ttf=ttf,
                    status=changes[-1][0] if changes else "open",
                    changes=changes,
                    reason="work order created",
                )
            )
    n_events = copy_text(
        conn,
        "machine_events",
        ("machine_id", "seq", "ts", "event", "mode", "kind", "duration_s", "detail"),
        (
            f"{m}\t{s}\t{ts.isoformat()}\t{ev}\t{mode or chr(92) + 'N'}\t{kind or chr(92) + 'N'}\t{d}\t{json.dumps(det)}\n"
            for m, s, ts, ev, mode, kind, d, det in events
        ),
    )
    alerts.sort(key=lambda a: a["at"])
    seq = 0
    for a in alerts:
        p = a["p"]
        sensors = TYPES[p.machine.type_id][1]
        seq += 1 + len(a["changes"])
        updated = a["changes"][-1][1] if a["changes"] else a["at"]
        alert_id = alert_store.insert_alert_record(
            conn,
            machine_id=p.machine.id,
            mode=p.mode,
            status=a["status"],
            severity=_severity(a["prob"]),
            failure_prob=a["prob"],
            ttf_h=a["ttf"],
            ttf_low_h=a["ttf"] * 0.6,
            ttf_high_h=a["ttf"] * 1.5,
            contributions=json.loads(_contributions(sensors, 0.8, rng)),
            model_version_id=versions[p.machine.type_id]["champion"],
            inputs_age_s=30.0,
            recommended_action=f"Inspect {p.mode.replace('_', ' ')} within {a['ttf']:.0f} h",
            created_at=a["at"],
            updated_at=updated,
            version=1 + len(a["changes"]),
            change_seq=seq,
        )
        rows: list[tuple[int, str | None, str, str, str, datetime, Any]] = [
            (alert_id, None, "open", "alert-engine", "probability above threshold", a["at"], {})
        ]
        prev = "open"
        for i, (status, when) in enumerate(a["changes"], start=1):
            last = i == len(a["changes"])
            detail = a.get("detail", {}) if last else {}
            rows.append((alert_id, prev, status, "operator", a["reason"], when, detail))
            prev = status
        alert_store.insert_transition_records(conn, rows)
        alert_store.set_change_counter(conn, seq, at_least=True)
    return n_events, len(alerts)


_SEEDED_MODELS = (  # (machine type, version, alias, held-out metrics): CNC has a challenger, pumps not
    ("cnc", 1, "champion", {"roc_auc": 0.962, "pr_auc": 0.81, "brier": 0.071, "ece": 0.034,
                            "rul_mae_h": 21.4, "rul_interval_coverage": 0.78}),
    ("cnc", 2, "challenger", {"roc_auc": 0.971, "pr_auc": 0.84, "brier": 0.064, "ece": 0.029,
                              "rul_mae_h": 19.8, "rul_interval_coverage": 0.81}),
    ("pump", 1, "champion", {"roc_auc": 0.948, "pr_auc": 0.77, "brier": 0.082, "ece": 0.041,
                             "rul_mae_h": 26.0, "rul_interval_coverage": 0.74}),
)  # fmt: skip


def _model_versions(conn: Connection, win: Window) -> dict[str, dict[str, int]]:
    """One model per machine type as training names them (``pm-<type>``): type -> alias -> id."""
    versions: dict[str, dict[str, int]] = {}
    for type_id, version, alias, metrics in _SEEDED_MODELS:
        sensors = _CNC if type_id == "cnc" else _PUMP
        feats = [f"{s[0]}__{agg}" for s in sensors for agg in ("mean_1", "std_6", "slope_24")]
        name = f"pm-{type_id}"
        artifact = f"seeded {name} v{version}".encode()
        created = win.start - timedelta(days=3 - version)
        fields = model_registry.VersionFields(
            artifact=artifact,
            artifact_sha256=hashlib.sha256(artifact).hexdigest(),
            features=feats,
            feature_hash=hashlib.sha256(",".join(feats).encode()).hexdigest()[:16],
            params={"horizon_h": 48, "sensors": [s[0] for s in sensors]},
            metrics=metrics,
            train_from=created - timedelta(days=90),
            train_to=created,
            code_revision="seed",
        )
        version_id = model_registry.put_version(conn, name, version, fields, created_at=created)
        versions.setdefault(type_id, {})[alias] = version_id
        model_registry.record_alias(conn, name, alias, version_id, at=created, actor="seed")
    return versions


def _online_models(conn: Connection, win: Window, rng: np.random.Generator) -> int:
    """The online (River) models' checkpoints as the scorer leaves them: plant hour, summary."""
    for type_id in TYPES:
        scored = int(rng.integers(2_000, 6_000))
        position = {
            "t_h": win.end.timestamp() / 3600.0,
            "scored": scored,
            "learned": scored - int(rng.integers(100, 400)),
            "pending": int(rng.integers(50, 300)),
            "log_loss": round(float(rng.uniform(0.15, 0.35)), 4),
            "roc_auc": round(float(rng.uniform(0.80, 0.92)), 4),
            "drift_events": 1,
        }
        model_registry.save_checkpoint(conn, f"online-{type_id}", b"seeded", position)
    return len(TYPES)


def _drift(conn: Connection, win: Window, rng: np.random.Generator) -> int:
    """Drift detections as the online scorer records them (audit_log action 'drift', per type)."""
    rows = []
    for i, (type_id, feature, detector) in enumerate(
        (
            ("pump", "bearing_temp", "PageHinkley"),
            ("cnc", "torque", "PageHinkley"),
            ("cnc", "abs_error", "ADWIN"),
        )
    ):
        at = win.start + (win.end - win.start) * float(rng.uniform(0.2 + i * 0.2, 0.35 + i * 0.2))
        detail = {"detectors": 1, "detector": detector, "feature": feature}
        rows.append((at, "scoring", "drift", type_id, detail))
    return audit.record_many(conn, rows)


def seed_history(
    conn: Connection,
    *,
    machines: int = 20,
    days: float = 7.0,
    now: datetime | None = None,
    reading_every_s: int = READING_EVERY_S,
    prediction_every_s: int = PREDICTION_EVERY_S,
    seed: int = 7,
) -> dict[str, int]:
    """Write ``days`` of history for ``machines`` machines ending at ``now``; commit; return row counts."""
    end = (now or datetime.now(UTC)).replace(microsecond=0)
    win = Window(end - timedelta(days=days), end)
    rng = np.random.default_rng(seed)
    reg = seed_registry(machines)
    upsert_registry(conn, reg)
    plans = _plans(reg, win, rng)
    versions = _model_versions(conn, win)
    counts = {"machines": machines}
    counts["readings"] = copy_text(
        conn,
        "readings",
        ("machine_id", "seq", "ts", "regime", "values"),
        _reading_lines(plans, win, reading_every_s, rng),
    )
    counts["predictions"] = copy_text(
        conn,
        "predictions",
        (
            "machine_id",
            "ts",
            "role",
            "model_version_id",
            "failure_prob",
            "rul_h",
            "rul_low_h",
            "rul_high_h",
            "anomaly",
            "mode",
            "contributions",
            "data_quality",
        ),
        _prediction_lines(plans, win, prediction_every_s, versions, rng),
    )
    counts["events"], counts["alerts"] = _events_and_alerts(conn, plans, win, versions, rng)
    counts["drift_events"] = _drift(conn, win, rng)
    counts["online_models"] = _online_models(conn, win, rng)
    conn.commit()
    for table in ("readings", "predictions", "machine_events", "alerts"):
        conn.execute(f"analyze {table}")
    conn.commit()
    return counts

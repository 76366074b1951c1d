"""The simulator engine: determinism, life cycle, degradation before failure, contract compliance."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from forewarn.contract import Event, Telemetry, encode, topic_for, validate
from forewarn.errors import ConfigError, ContractError, NotFound
from forewarn.factory import load_factory
from simulator.app import simulate
from simulator.engine import History, Plant, encode_stream, run_history
from simulator.faults import Malformed
from simulator.sinks import JsonlSink, read_jsonl

FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)

# failure mode -> (sensor, expected direction of its mean late in a life vs early)
RELEVANT: dict[str, list[tuple[str, int]]] = {
    "tool_wear": [("tool_wear", +1)],
    # overstrain: the wear is the precursor; torque (job setpoints) is the trigger, not a trend
    "overstrain": [("tool_wear", +1)],
    "heat": [("process_temp", +1)],
    "power": [("rotational_speed", -1)],
    "bearing": [("vibration_rms", +1), ("bearing_temp", +1)],
    "seal": [("pressure", -1), ("flow", -1)],
    "hpc": [("t50", +1), ("t30", +1)],
    "fan": [("nf", -1), ("p15", -1)],
}


@pytest.fixture(scope="module")
def month() -> History:
    """50 machines (the default mix), 30 simulated days."""
    return run_history(load_factory(machines=50), 30 * 24, seed=11)


def _jsonl(tmp_path: Path, name: str, seed: int) -> bytes:
    path = tmp_path / name
    simulate(load_factory(machines=12), hours=48, seed=seed, sink=JsonlSink(path), bad_rate=0.01)
    return path.read_bytes()


def test_same_seed_gives_identical_files_and_different_seeds_differ(tmp_path: Path) -> None:
    a, b, c = _jsonl(tmp_path, "a", 5), _jsonl(tmp_path, "b", 5), _jsonl(tmp_path, "c", 6)
    assert a == b
    assert a != c
    assert len(a.splitlines()) > 12 * 48 * 11  # roughly one message per machine per 5 minutes


def test_factory_registry_ids_unique_and_mix_scales() -> None:
    f = load_factory(machines=1000)
    reg = f.registry()
    ids = [m.id for m in reg.machines]
    assert len(ids) == 1000 == len(set(ids))
    assert Counter(m.type_id for m in reg.machines) == {"cnc": 400, "pump": 400, "turbofan": 200}
    assert {m.site_id for m in reg.machines} == {"s1", "s2"}
    line_ids = {ln.id for ln in reg.lines}
    assert all(m.line_id in line_ids for m in reg.machines)
    turbofan = next(t for t in reg.types if t.id == "turbofan")
    assert len(turbofan.sensors) == 21 and turbofan.failure_modes == ("hpc", "fan", "random")


def test_month_contains_every_failure_mode(month: History) -> None:
    f = load_factory(machines=50)
    seen = Counter((t.type_id, t.mode) for t in month.failures)
    for t in f.types:
        for mode in t.failure_modes:
            assert seen[(t.id, mode)] >= 1, f"no {t.id} failure of mode {mode}: {seen}"
    # every failure is followed by a repair (unless the month ended first) and the machine returns
    events = [m for m in month.messages if isinstance(m, Event)]
    repairs = [e for e in events if e.event == "maintenance" and e.kind == "repair"]
    assert len(repairs) >= len(month.failures) - 50


def test_degradation_precedes_failure(month: History) -> None:
    """Mean of the relevant sensors over the last third of a life differs from its first third."""
    f = load_factory(machines=50)
    regime_gain = {s.name: s.regime_gain for t in f.types for s in t.sensors}
    z = [r.z for r in f.type("turbofan").regimes]
    lives: dict[str, list[Telemetry]] = {}
    shifts: dict[tuple[str, str], list[float]] = {}
    for m in month.messages:
        if isinstance(m, Telemetry):
            lives.setdefault(m.machine, []).append(m)
        elif m.event == "state" and m.state == "running":
            lives[m.machine] = []  # back from maintenance: a new life starts
        elif m.event == "failure":
            life = lives.get(m.machine, [])
            if m.mode in RELEVANT and len(life) >= 60:
                third = len(life) // 3
                for sensor, sign in RELEVANT[m.mode or ""]:

                    def mean(part: list[Telemetry], sensor: str = sensor) -> float:
                        # turbofan: take the operating regime out (regime_gain * z)
                        vals = [
                            v - regime_gain[sensor] * (z[t.regime] if t.regime is not None else 0.0)
                            for t in part
                            if (v := t.values.get(sensor)) is not None
                        ]
                        return sum(vals) / len(vals)

                    shift = mean(life[-third:]) - mean(life[:third])
                    shifts.setdefault((m.mode or "", sensor), []).append(sign * shift)
    assert {mode for mode, _ in shifts} == set(RELEVANT)
    for (mode, sensor), vals in shifts.items():
        agree = sum(v > 0 for v in vals) / len(vals)
        assert sum(vals) / len(vals) > 0, f"{mode}/{sensor}: mean shift has the wrong sign"
        assert agree >= 0.7, f"{mode}/{sensor}: only {agree:.0%} of {len(vals)} lives degrade"


def test_every_clean_message_validates_against_the_registry(month: History) -> None:
    specs = load_factory(machines=50).registry().specs()
    kinds = Counter()
    for m in month.messages:
        kind = "telemetry" if isinstance(m, Telemetry) else "event"
        parsed = validate(topic_for(m.site, m.machine, kind), encode(m), specs, now=FAR_FUTURE)
        assert parsed.seq == m.seq
        kinds[kind] += 1
    assert kinds["telemetry"] > 400_000 and kinds["event"] > 300
    # seq strictly increases per machine, and time never goes backwards
    last_seq: dict[str, int] = {}
    last_ts = month.messages[0].ts
    for m in month.messages:
        assert m.seq > last_seq.get(m.machine, 0)
        last_seq[m.machine] = m.seq
        assert m.ts >= last_ts
        last_ts = m.ts


def test_dropouts_are_nulls_and_turbofans_send_regimes(month: History) -> None:
    tele = [m for m in month.messages if isinstance(m, Telemetry)]
    nulls = sum(v is None for m in tele for v in m.values.values())
    values = sum(len(m.values) for m in tele)
    assert 0.001 < nulls / values < 0.004  # the default drop-out rate is 0.002 per value
    regimes = Counter(m.regime for m in tele if "-turbofan-" in m.machine)
    assert set(regimes) == set(range(6))
    assert all(
        m.settings and set(m.settings) == {"altitude", "mach", "tra"}
        for m in tele[:5000]
        if "-turbofan-" in m.machine
    )


def test_malformed_messages_fail_validation_with_their_reason() -> None:
    f = load_factory(machines=6)
    specs = f.registry().specs()
    plant = Plant(f, seed=3, bad_rate=0.05)
    bad = [m for m in plant.run(48) if isinstance(m, Malformed)]
    assert len(bad) > 50
    assert {b.reason for b in bad} == {
        "not_json",
        "non_finite",
        "out_of_bounds",
        "wrong_type",
        "schema",
    }
    for b in bad:
        with pytest.raises(ContractError) as exc:
            validate(topic_for(b.site, b.machine, "telemetry"), b.payload, specs, now=FAR_FUTURE)
        assert exc.value.reason == b.reason


def test_maintenance_hook_avoids_the_failure() -> None:
    f = load_factory(machines=12)
    first = run_history(f, 20 * 24, seed=9)
    target = next(t for t in first.failures if t.mode != "random")
    order_at = target.ts - timedelta(hours=12)

    plant = Plant(f, seed=9)
    plant.apply_maintenance(target.machine, "preventive", at=order_at, alert_id=42)
    messages = list(plant.run(20 * 24))
    mine = [m for m in messages if m.machine == target.machine and isinstance(m, Event)]
    maint = [e for e in mine if e.event == "maintenance" and e.detail.get("alert_id") == 42]
    assert len(maint) == 1 and maint[0].kind == "preventive"
    assert order_at <= maint[0].ts <= order_at + timedelta(hours=6)
    assert target.mode in maint[0].detail["renewed"]
    window_end = target.ts + timedelta(hours=48)
    assert not any(
        e.event == "failure" and e.mode == target.mode and order_at <= e.ts <= window_end
        for e in mine
    )
    # other machines are untouched by the order: their streams are identical
    others = [
        encode(m) for m in messages if m.machine != target.machine and not isinstance(m, Malformed)
    ]
    before = [encode(m) for m in first.messages if m.machine != target.machine]
    assert others == before


def test_apply_maintenance_rejects_unknown_machine_and_kind() -> None:
    plant = Plant(load_factory(machines=3), seed=0)
    with pytest.raises(NotFound):
        plant.apply_maintenance("nope", "repair")
    with pytest.raises(ValueError):
        plant.apply_maintenance(plant.units[0].id, "polish")


def test_jsonl_round_trips_to_the_published_bytes(tmp_path: Path) -> None:
    f = load_factory(machines=4)
    path = tmp_path / "x.jsonl"
    simulate(f, hours=12, seed=2, sink=JsonlSink(path), bad_rate=0.02)
    expected = list(encode_stream(Plant(f, seed=2, bad_rate=0.02).run(12), f.topic_root))
    assert read_jsonl(path) == expected


def test_scheduled_preventive_maintenance_prevents_wear_failures() -> None:
    base = load_factory(machines=20)
    planned = replace(base, types=tuple(replace(t, preventive_every_h=240.0) for t in base.types))
    without = run_history(base, 30 * 24, seed=8)
    with_pm = run_history(planned, 30 * 24, seed=8)
    kinds = Counter((t.kind, t.trigger) for t in with_pm.truth if t.event == "maintenance")
    assert kinds[("preventive", "schedule")] >= 20 * 2  # every 10 operating days, 30 days
    wear = [t for t in without.failures if t.mode != "random"]
    wear_pm = [t for t in with_pm.failures if t.mode != "random"]
    assert len(wear_pm) < len(wear) / 2


def test_bad_factory_config_names_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "f.toml"
    bad.write_text("[plant\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_factory(bad)
    bad.write_text('[[sites]]\nid = "s1"\n[[types]]\nid = "x"\nmodel = "blender"\n')
    with pytest.raises(ConfigError, match="model must be one of"):
        load_factory(bad)
    with pytest.raises(ConfigError):
        load_factory(tmp_path / "missing.toml")

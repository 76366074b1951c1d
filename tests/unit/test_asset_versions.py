"""The registry's versions as validation specs: which spec holds at a reading's time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from forewarn.assets import (
    BEGINNING,
    MachineSpec,
    MachineType,
    SensorSpec,
    TypeVersion,
    changes,
    spec_of,
    stretches,
    type_periods,
    with_history,
)
from forewarn.contract import Limits, Telemetry, encode, validate
from forewarn.errors import ContractError
from ingest.fastpath import fast_telemetry
from tests.factories import COSTS

T1 = datetime(2026, 6, 1, tzinfo=UTC)
T2 = datetime(2026, 9, 1, tzinfo=UTC)
ROOT = "forewarn/v1"


def _type(type_id: str, vib_max: float, other: str = "oil_temp") -> MachineType:
    sensors = (SensorSpec("vibration", "mm/s", 0, vib_max), SensorSpec(other, "x", 0, 100))
    return MachineType(type_id, type_id, sensors, ("bearing",), COSTS)


PUMP_V1, PUMP_V2 = _type("pump", 50), _type("pump", 30)
BIG = _type("big", 120, "flow")
VERSIONS = {
    "pump": [TypeVersion(BEGINNING, 1, PUMP_V1), TypeVersion(T1, 2, PUMP_V2)],
    "big": [TypeVersion(BEGINNING, 1, BIG)],
}


def _specs() -> dict[str, MachineSpec]:
    current = {"a": spec_of("s", PUMP_V2), "b": spec_of("s", BIG)}
    assignments = {"b": [(BEGINNING, "pump"), (T2, "big")]}
    return with_history(current, {"pump": PUMP_V2, "big": BIG}, VERSIONS, assignments)


def test_each_time_gets_the_spec_in_effect_then() -> None:
    specs = _specs()
    a, b = specs["a"], specs["b"]
    assert a.since == T1 and b.since == T2
    assert a.at(T1 - timedelta(microseconds=1)).bounds["vibration"] == (0, 50)
    assert a.at(T1) is a
    assert b.at(T1 - timedelta(days=1)).bounds["vibration"] == (0, 50)
    assert b.at(T1 + timedelta(days=1)).bounds["vibration"] == (0, 30)
    assert b.at(T1 + timedelta(days=1)).type_id == "pump"
    assert b.at(T2).type_id == "big"
    # older stretches are shared between machines, not rebuilt per machine
    assert a.at(T1 - timedelta(days=1)) is b.at(T1 - timedelta(days=1))


def test_a_change_of_costs_only_leaves_validation_without_history() -> None:
    pricier = replace(PUMP_V1, costs=replace(COSTS, repair_cost=COSTS.repair_cost + 1))
    versions = {"pump": [TypeVersion(BEGINNING, 1, PUMP_V1), TypeVersion(T1, 2, pricier)]}
    got = with_history({"a": spec_of("s", pricier)}, {"pump": pricier}, versions, {})
    assert got["a"].since is None and got["a"].earlier == ()


def test_stretches_and_periods_of_a_machine_that_changed_type_and_back() -> None:
    assigned = [(BEGINNING, "pump"), (T1 - timedelta(days=30), "big"), (T2, "pump")]
    got = [(vf, t, v.version if v else None) for vf, t, v in stretches(assigned, VERSIONS)]
    assert got == [(BEGINNING, "pump", 1), (T1 - timedelta(days=30), "big", 1), (T2, "pump", 2)]
    periods = type_periods({"m": "pump", "n": "big"}, {"m": assigned})
    assert periods["pump"]["m"] == [(BEGINNING, T1 - timedelta(days=30)), (T2, None)]
    assert periods["big"] == {"m": [(T1 - timedelta(days=30), T2)], "n": [(BEGINNING, None)]}


@pytest.mark.parametrize(
    ("ts", "ok"),
    [(T1 - timedelta(seconds=1), True), (T1, False), (T1 + timedelta(days=1), False)],
)
def test_fast_path_and_contract_agree_on_either_side_of_a_change(ts: datetime, ok: bool) -> None:
    specs = _specs()
    msg = Telemetry("s", "a", ts, 1, {"vibration": 45.0, "oil_temp": 1.0})
    topic, payload, now = f"{ROOT}/s/a/telemetry", encode(msg), T2
    limits = Limits()
    fast = fast_telemetry(topic, payload, specs, now=now, limits=limits, root=ROOT)
    if ok:
        assert fast is not None
        assert fast == validate(topic, payload, specs, now=now, root=ROOT)
    else:
        assert fast is None
        with pytest.raises(ContractError) as err:
            validate(topic, payload, specs, now=now, root=ROOT)
        assert err.value.reason == "out_of_bounds"


def test_changes_in_words() -> None:
    assert changes(None, PUMP_V1) == ["type pump (2 sensors)"]
    assert changes(PUMP_V1, PUMP_V2) == ["vibration bounds [0, 50] -> [0, 30]"]
    assert changes(PUMP_V2, BIG) == ["type pump -> big"]
    grown = replace(PUMP_V1, sensors=(*PUMP_V1.sensors[1:], SensorSpec("flow", "m3/h", 0, 9)))
    assert changes(PUMP_V1, grown) == ["sensor flow added [0, 9] m3/h", "sensor vibration removed"]

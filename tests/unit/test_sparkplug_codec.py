"""Sparkplug B decoding (Tahu protobuf) and the host's rules, without a broker."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from forewarn.assets import MachineSpec
from forewarn.contract import Limits, Telemetry
from forewarn.errors import ContractError
from ingest.sparkplug import sparkplug_b_pb2 as pb
from ingest.sparkplug.codec import (
    REBIRTH,
    SpbTopic,
    decode_payload,
    parse_topic,
    rebirth_request,
)
from ingest.sparkplug.host import SparkplugHost

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
MS = int(NOW.timestamp() * 1000)
SPECS = {"pump-1": MachineSpec("s1", "pump", {"temp": (-50.0, 200.0), "rpm": (0.0, 5000.0)})}


def _payload(seq: int, metrics: list[dict[str, object]], ts: int = MS) -> bytes:
    msg = pb.Payload(timestamp=ts, seq=seq)
    for spec in metrics:
        m = msg.metrics.add()
        for key, value in spec.items():
            if key == "props":
                assert isinstance(value, dict)
                for pk, pv in value.items():
                    m.properties.keys.append(pk)
                    v = m.properties.values.add()
                    if isinstance(pv, str):
                        v.type, v.string_value = pb.String, pv
                    else:
                        v.type, v.double_value = pb.Double, float(pv)  # type: ignore[arg-type]
            else:
                setattr(m, key, value)
    return msg.SerializeToString()


def test_topics() -> None:
    assert parse_topic("spBv1.0/g/DDATA/e/d") == SpbTopic("g", "DDATA", "e", "d")
    assert parse_topic("spBv1.0/g/NBIRTH/e") == SpbTopic("g", "NBIRTH", "e")
    assert parse_topic("spBv1.0/STATE/host") is None
    for bad in (
        "spBv1.0/g/DDATA/e",
        "spBv1.0/g/NDATA/e/d",
        "spBv1.0/g/XDATA/e",
        "spBv1.0//NDATA/e",
    ):
        with pytest.raises(ContractError) as info:
            parse_topic(bad)
        assert info.value.reason == "bad_topic"


def test_decoding_signed_integers_booleans_units_and_ranges() -> None:
    raw = _payload(
        3,
        [
            {"name": "a", "datatype": pb.Int16, "int_value": (1 << 32) - 5},  # -5, 32-bit form
            {"name": "b", "datatype": pb.Int64, "long_value": (1 << 64) - 1},  # -1
            {"name": "c", "datatype": pb.Boolean, "boolean_value": True},
            {"name": "d", "datatype": pb.Double, "double_value": 1.5,
             "props": {"engUnit": "degC", "engLow": -40, "engHigh": 120}},
            {"name": "e", "datatype": pb.String, "string_value": "ok"},
            {"name": "f", "datatype": pb.Double, "is_null": True},
        ],
    )  # fmt: skip
    p = decode_payload(raw)
    assert (p.seq, p.timestamp_ms) == (3, MS)
    assert [m.value for m in p.metrics] == [-5.0, -1.0, 1.0, 1.5, "ok", None]
    d = p.metrics[3]
    assert (d.unit, d.low, d.high, d.datatype_name) == ("degC", -40.0, 120.0, "Double")
    with pytest.raises(ContractError) as info:
        decode_payload(b"\xff\xff\xff")
    assert info.value.reason == "not_protobuf"


def test_rebirth_request_is_node_control_rebirth_true() -> None:
    (m,) = decode_payload(rebirth_request(MS)).metrics
    assert (m.name, m.value, m.datatype) == (REBIRTH, 1.0, pb.Boolean)


def _host() -> SparkplugHost:
    return SparkplugHost(["g"], root="forewarn/v1", limits=Limits(), auto_register=False,
                         rebirth_interval_s=0)  # fmt: skip


def _birth(host: SparkplugHost) -> None:
    host.handle("spBv1.0/g/NBIRTH/e", _payload(0, [{"name": "bdSeq", "datatype": pb.Int64,
                                                     "long_value": 7}]), SPECS, NOW)  # fmt: skip
    out = host.handle(
        "spBv1.0/g/DBIRTH/e/pump-1",
        _payload(1, [
            {"name": "Sensors/temp", "alias": 10, "datatype": pb.Float, "float_value": 20.0},
            {"name": "rpm", "alias": 11, "datatype": pb.Int32, "int_value": 1200},
            {"name": "Status/mode", "alias": 12, "datatype": pb.String, "string_value": "auto"},
        ]),
        SPECS,
        NOW,
    )  # fmt: skip
    assert out.dead is None and out.rebirth is None
    assert {(b.name, b.sensor) for b in out.births} == {
        ("Sensors/temp", "temp"), ("rpm", "rpm"), ("Status/mode", None)}  # fmt: skip


def test_host_aliases_natural_key_gaps_and_deaths() -> None:
    host = _host()
    _birth(host)
    out = host.handle("spBv1.0/g/DDATA/e/pump-1",
                      _payload(2, [{"alias": 10, "float_value": 21.5, "timestamp": MS + 5}]),
                      SPECS, NOW)  # fmt: skip
    (t,) = out.messages
    assert isinstance(t, Telemetry) and t.values == {"temp": 21.5} and t.site == "s1"
    assert t.seq == (MS + 5) * 256 + 2 and out.rebirth is None
    gap = host.handle("spBv1.0/g/DDATA/e/pump-1", _payload(5, [{"alias": 11, "int_value": 3}]),
                      SPECS, NOW)  # fmt: skip
    assert gap.rebirth == SpbTopic("g", "NCMD", "e") and len(gap.messages) == 1
    unknown = host.handle("spBv1.0/g/DDATA/e/pump-1", _payload(6, [{"alias": 99, "int_value": 3}]),
                          SPECS, NOW)  # fmt: skip
    assert unknown.dead is not None and unknown.dead[0] == "unknown_alias" and not unknown.messages
    stale = host.handle("spBv1.0/g/NDEATH/e", _payload(0, [{"name": "bdSeq", "long_value": 6}]),
                        SPECS, NOW)  # fmt: skip
    assert stale.messages == []  # an older session's will
    death = host.handle("spBv1.0/g/NDEATH/e", _payload(0, [{"name": "bdSeq", "long_value": 7}]),
                        SPECS, NOW)  # fmt: skip
    assert [(e.machine, e.state) for e in death.messages] == [("pump-1", "down")]  # type: ignore[union-attr]
    after = host.handle("spBv1.0/g/DDATA/e/pump-1", _payload(7, [{"alias": 10, "float_value": 1.0}]),
                        SPECS, NOW)  # fmt: skip
    assert after.rebirth is not None and after.dead is not None  # no birth since the death


def test_host_rejects_like_the_json_contract() -> None:
    host = _host()
    _birth(host)
    out = host.handle("spBv1.0/g/DDATA/e/pump-1", _payload(2, [{"alias": 10, "float_value": 900.0}]),
                      SPECS, NOW)  # fmt: skip
    assert out.dead is not None and out.dead[0] == "out_of_bounds" and not out.messages
    ghost = host.handle("spBv1.0/g/DBIRTH/e/pump-9",
                        _payload(3, [{"name": "temp", "datatype": pb.Float, "float_value": 1.0}]),
                        SPECS, NOW)  # fmt: skip
    assert ghost.dead is not None and ghost.dead[0] == "unknown_machine"
    assert [b.name for b in ghost.births] == ["temp"]  # still recorded in the catalogue

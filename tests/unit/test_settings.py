from __future__ import annotations

from pathlib import Path

import pytest

from forewarn.errors import ConfigError
from forewarn.settings import load_settings, masked


def test_defaults_mean_embedded_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("FOREWARN_DB__URL", "FOREWARN_MQTT__URL", "FOREWARN_STATE_DIR"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings()
    assert s.db.url is None
    assert s.mqtt.url is None
    assert s.state_dir == Path(".forewarn")


def test_nested_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOREWARN_DB__URL", "postgresql://app:s3cret@db.example:5432/forewarn")
    monkeypatch.setenv("FOREWARN_MQTT__URL", "mqtt://broker:1884")
    monkeypatch.setenv("FOREWARN_STATE_DIR", "/tmp/fw-state")
    monkeypatch.setenv("FOREWARN_INGEST__BATCH_SIZE", "500")
    s = load_settings()
    assert s.db.url is not None and s.db.url.get_secret_value().endswith("/forewarn")
    assert s.mqtt.host_port() == ("broker", 1884, False)
    assert s.state_dir == Path("/tmp/fw-state")
    assert s.ingest.batch_size == 500


def test_masked_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOREWARN_DB__URL", "postgresql://app:s3cret@db:5432/forewarn")
    monkeypatch.setenv("FOREWARN_MQTT__PASSWORD", "hunter2")
    shown = str(masked(load_settings()))
    assert "s3cret" not in shown and "hunter2" not in shown
    assert "postgresql://app:***@db:5432/forewarn" in shown


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("FOREWARN_DB__URL", "mysql://x/y"),
        ("FOREWARN_MQTT__URL", "http://broker"),
        ("FOREWARN_API__PORT", "eighty"),
        ("FOREWARN_INGEST__QUEUE_MAX", "0"),
        ("FOREWARN_LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.variable == var
    assert var in str(info.value)


def test_sparkplug_and_opcua_settings_in_config_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOREWARN_SPARKPLUG__GROUPS", "plant-a, plant-b")
    monkeypatch.setenv("FOREWARN_OPCUA__ENDPOINT", "opc.tcp://plc:4840")
    monkeypatch.setenv("FOREWARN_OPCUA__PASSWORD", "opc-s3cret")
    shown = masked(load_settings())
    assert shown["sparkplug"]["groups"] == ["plant-a", "plant-b"]
    assert shown["opcua"]["endpoint"] == "opc.tcp://plc:4840"
    assert "opc-s3cret" not in str(shown)
    monkeypatch.setenv("FOREWARN_SPARKPLUG__MACHINE_ID", "{plant}")
    with pytest.raises(ConfigError, match="FOREWARN_SPARKPLUG__MACHINE_ID"):
        load_settings()
    monkeypatch.delenv("FOREWARN_SPARKPLUG__MACHINE_ID")
    monkeypatch.setenv("FOREWARN_OPCUA__ENDPOINT", "http://plc")
    with pytest.raises(ConfigError, match="FOREWARN_OPCUA__ENDPOINT"):
        load_settings()

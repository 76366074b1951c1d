"""compose.yaml cannot run here (no Docker engine); check that it fits the code it deploys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from forewarn.cli import app
from forewarn.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
FOREWARN_SERVICES = {n: s for n, s in SERVICES.items() if s.get("image") == "forewarn:latest"}


def _resolve(argv: list[str]) -> Any:
    """Walk the CLI like the shell would; fail if a command does not exist."""
    cmd: Any = typer.main.get_command(app)
    context = type(cmd).context_class  # typer may ship its own click: use its classes
    ctx = context(cmd)
    for word in argv:
        if word.startswith("-") or not hasattr(cmd, "get_command"):
            break
        sub = cmd.get_command(ctx, word)
        assert sub is not None, f"no command {word!r} in {argv}"
        cmd, ctx = sub, context(sub, parent=ctx)
    return cmd


def _setting_exists(var: str) -> bool:
    parts = var.removeprefix("FOREWARN_").lower().split("__")
    model: Any = Settings
    for p in parts:
        fields = model.model_fields
        if p not in fields:
            return False
        model = fields[p].annotation
    return True


def test_every_component_is_a_service() -> None:
    assert {
        "timescaledb",
        "mosquitto",
        "migrate",
        "ingest",
        "scoring",
        "alerts",
        "api",
        "dashboard",
        "simulator",
    } <= set(SERVICES)
    assert SERVICES["timescaledb"]["image"].startswith("timescale/timescaledb")
    assert SERVICES["mosquitto"]["image"].startswith("eclipse-mosquitto")


@pytest.mark.parametrize("name", sorted(FOREWARN_SERVICES))
def test_service_command_exists_and_options_are_known(name: str) -> None:
    argv = FOREWARN_SERVICES[name]["command"]
    cmd = _resolve(argv)
    known = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
    for word in argv:
        if word.startswith("--"):
            assert word in known, f"{name}: {word} is not an option of {argv}"


@pytest.mark.parametrize("name", sorted(FOREWARN_SERVICES))
def test_service_environment_names_real_settings(name: str) -> None:
    env = FOREWARN_SERVICES[name].get("environment", {})
    for var in env:
        if var.startswith("FOREWARN_"):
            assert _setting_exists(var), f"{name}: {var} is not a setting"


def test_long_running_services_have_health_checks() -> None:
    for name in ("timescaledb", "mosquitto", "ingest", "api", "dashboard"):
        assert "healthcheck" in SERVICES[name], name


def test_mounted_broker_config_is_in_the_repository() -> None:
    for volume in SERVICES["mosquitto"]["volumes"]:
        src = volume.split(":")[0]
        if src.startswith("./") and not src.endswith(
            "passwd"
        ):  # the password file is made per site
            assert (ROOT / src).exists(), src
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    assert "password_file" in conf and "acl_file" in conf and "persistence true" in conf


def test_dockerfile_copies_every_package() -> None:
    text = (ROOT / "Dockerfile").read_text()
    for pkg in ("forewarn", "ingest", "models", "api", "dashboard", "simulator", "connectors"):
        assert f"COPY {pkg} ./{pkg}" in text


def _acl() -> dict[str, set[tuple[str, str]]]:
    """user -> {(read|write, topic)} of deploy/mosquitto/acl; '' collects lines before any user."""
    grants: dict[str, set[tuple[str, str]]] = {"": set()}
    user = ""
    for line in (ROOT / "deploy/mosquitto/acl").read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "user":
            user = words[1]
            grants.setdefault(user, set())
        else:
            assert words[0] == "topic", f"only user/topic lines, no {words[0]!r}: {line}"
            grants[user].add((words[1], words[2]))
    return grants


def test_the_broker_acl_gives_each_service_user_exactly_its_topics() -> None:
    """No `pattern` lines (they apply to every user) and nothing granted before a user line."""
    acl = _acl()
    assert acl.pop("") == set()
    root = "forewarn/v1/+/+"
    assert acl["forewarn-ingest"] == {
        ("read", f"{root}/telemetry"),
        ("read", f"{root}/event"),
        ("read", f"$share/+/{root}/telemetry"),
        ("read", f"$share/+/{root}/event"),
        ("read", "spBv1.0/#"),
        ("write", "spBv1.0/+/NCMD/+"),
        ("write", "spBv1.0/STATE/+"),
    }
    assert acl["forewarn-api"] == {("write", f"{root}/command"), ("read", "$SYS/broker/uptime")}
    assert acl["forewarn-sim"] == {
        ("write", f"{root}/telemetry"),
        ("write", f"{root}/event"),
        ("read", f"{root}/command"),
    }
    assert acl["forewarn-opcua"] == {("write", f"{root}/telemetry")}
    for site in ("plant-a", "plant-b"):  # gateways: their own site only
        assert acl[site] == {
            ("write", f"forewarn/v1/{site}/+/telemetry"),
            ("write", f"forewarn/v1/{site}/+/event"),
            ("read", f"forewarn/v1/{site}/+/command"),
        }

"""The OPC UA node map: which server nodes are which machine's sensors (a TOML file).

```toml
site = "s1"                    # default site of the machines below
sampling_interval_ms = 500     # optional; else FOREWARN_OPCUA__SAMPLING_INTERVAL_MS

[[machines]]
id = "s1-pump-000"
# site = "s2"                  # optional, per machine
[machines.sensors]
bearing_temp = "ns=2;s=Pump0.BearingTemp"        # a NodeId
flow = "0:Objects/2:Pump0/2:Flow"                # or a browse path from the root
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forewarn.errors import ConfigError

NODE_ID_PREFIXES = ("ns=", "i=", "s=", "g=", "b=", "nsu=")


@dataclass(frozen=True, slots=True)
class MachineMap:
    id: str
    site: str
    sensors: dict[str, str]  # sensor -> NodeId string or browse path


@dataclass(frozen=True, slots=True)
class NodeMap:
    machines: tuple[MachineMap, ...]
    sampling_interval_ms: float | None = None

    def nodes(self) -> list[tuple[str, str, str]]:
        """(machine, sensor, node reference) for every mapped node."""
        return [(m.id, s, ref) for m in self.machines for s, ref in m.sensors.items()]


def is_node_id(ref: str) -> bool:
    return ref.startswith(NODE_ID_PREFIXES)


def browse_path(ref: str) -> list[str]:
    """``0:Objects/2:Pump0/2:Flow`` -> the qualified names asyncua's ``get_child`` takes."""
    return [part for part in ref.strip("/").split("/") if part]


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError("FOREWARN_OPCUA__MAP_FILE", f"{where} must be a non-empty string")
    return value


def parse_map(data: dict[str, Any], source: str = "map") -> NodeMap:
    """Check a parsed map; ConfigError naming the machine and field that is wrong."""
    default_site = data.get("site")
    interval = data.get("sampling_interval_ms")
    if interval is not None and (not isinstance(interval, int | float) or interval <= 0):
        raise ConfigError("FOREWARN_OPCUA__MAP_FILE", f"{source}: sampling_interval_ms must be > 0")
    raw = data.get("machines")
    if not isinstance(raw, list) or not raw:
        raise ConfigError("FOREWARN_OPCUA__MAP_FILE", f"{source}: no [[machines]]")
    machines = []
    seen: set[str] = set()
    for i, m in enumerate(raw):
        where = f"{source}: machines[{i}]"
        if not isinstance(m, dict):
            raise ConfigError("FOREWARN_OPCUA__MAP_FILE", f"{where} must be a table")
        mid = _text(f"{where}.id", m.get("id"))
        if mid in seen:
            raise ConfigError("FOREWARN_OPCUA__MAP_FILE", f"{where}.id {mid!r} appears twice")
        seen.add(mid)
        site = _text(f"{where}.site (or a top-level site)", m.get("site", default_site))
        sensors = m.get("sensors")
        if not isinstance(sensors, dict) or not sensors:
            raise ConfigError(
                "FOREWARN_OPCUA__MAP_FILE", f"{where}.sensors must map sensor -> node"
            )
        machines.append(
            MachineMap(
                mid, site, {s: _text(f"{where}.sensors.{s}", ref) for s, ref in sensors.items()}
            )
        )
    return NodeMap(tuple(machines), float(interval) if interval is not None else None)


def load_map(path: Path) -> NodeMap:
    """Read and check a map file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError("FOREWARN_OPCUA__MAP_FILE", f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("FOREWARN_OPCUA__MAP_FILE", f"{path}: {exc}") from None
    return parse_map(data, str(path))

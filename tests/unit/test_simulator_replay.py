"""Dataset replay: exactly one telemetry message per dataset row, every message valid."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from forewarn.contract import Telemetry, encode, topic_for, validate
from simulator.replay import ai4i_messages, cmapss_messages, replay_registry

pytestmark = pytest.mark.dataset

FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
ROWS = {"FD001": (20631, 100), "FD003": (24720, 100)}


@pytest.fixture(scope="module")
def data_dir() -> Path:
    env = os.environ.get("FOREWARN_DATA_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"
    if not path.is_dir():
        pytest.skip(
            f"public datasets not found at {path}: set FOREWARN_DATA_DIR (see shared/data/README.md)"
        )
    return path


def _check(messages: list, registry_specs: dict) -> Counter:
    kinds: Counter = Counter()
    for m in messages:
        kind = "telemetry" if isinstance(m, Telemetry) else "event"
        validate(topic_for(m.site, m.machine, kind), encode(m), registry_specs, now=FAR_FUTURE)
        kinds[kind] += 1
    return kinds


@pytest.mark.parametrize("subset", sorted(ROWS))
def test_cmapss_replay_sends_one_message_per_row(data_dir: Path, subset: str) -> None:
    rows, units = ROWS[subset]
    if not any((data_dir / "cmapss" / f"train_{subset}.txt{ext}").is_file() for ext in ("", ".gz")):
        pytest.skip(f"train_{subset} not in {data_dir / 'cmapss'}")
    reg = replay_registry("cmapss", data_dir, subset)
    assert len(reg.machines) == units
    messages = list(cmapss_messages(data_dir, subset))
    kinds = _check(messages, reg.specs())
    assert kinds == {"telemetry": rows, "event": units}
    # each unit's failure comes right after its last cycle, and time never goes backwards
    assert all(a.ts <= b.ts for a, b in zip(messages, messages[1:], strict=False))
    last = {}
    for m in messages:
        if isinstance(m, Telemetry):
            assert m.machine not in last, "telemetry after the unit failed"
        else:
            last[m.machine] = m.mode
    assert len(last) == units


def test_ai4i_replay_sends_one_message_per_row(data_dir: Path) -> None:
    path = data_dir / "ai4i2020" / "ai4i2020.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    reg = replay_registry("ai4i", path)
    messages = list(ai4i_messages(path))
    kinds = _check(messages, reg.specs())
    assert kinds == {"telemetry": 10_000, "event": 339}
    modes = Counter(m.mode for m in messages if not isinstance(m, Telemetry))
    assert modes["heat"] == 115 and modes["unknown"] == 9

"""Malformed messages: raw bad bytes in place of a telemetry message, to exercise dead-lettering.

Each one carries the reason validation is expected to give (``forewarn.contract.Reason`` values).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from forewarn.contract import Telemetry, encode
from forewarn.factory import TypeConfig
from simulator.draws import Draws

KINDS = ("not_json", "non_finite", "out_of_bounds", "wrong_type", "schema")


@dataclass(frozen=True, slots=True)
class Malformed:
    site: str
    machine: str
    ts: datetime
    payload: bytes
    reason: str  # the contract Reason validation should report


def corrupt(msg: Telemetry, draws: Draws, cfg: TypeConfig) -> Malformed:
    """A broken version of ``msg``, the kind drawn from ``draws``."""
    good = encode(msg)
    kind = KINDS[min(int(draws.uniform() * len(KINDS)), len(KINDS) - 1)]
    body = json.loads(good)
    first = cfg.sensors[0]
    if kind == "not_json":
        cut = 1 + int(draws.uniform() * (len(good) - 2))
        payload = good[:cut]  # a truncated object is never valid JSON
    elif kind == "non_finite":
        body["values"][first.name] = float("nan")
        payload = json.dumps(body, separators=(",", ":")).encode()
    elif kind == "out_of_bounds":
        body["values"][first.name] = first.max + 10.0 * (first.max - first.min)
        payload = json.dumps(body, separators=(",", ":")).encode()
    elif kind == "wrong_type":
        body["values"][first.name] = "n/a"
        payload = json.dumps(body, separators=(",", ":")).encode()
    else:
        del body["ts"]
        payload = json.dumps(body, separators=(",", ":")).encode()
    return Malformed(msg.site, msg.machine, msg.ts, payload, kind)

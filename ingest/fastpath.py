"""A fast, conservative pre-check for the common telemetry message; the contract stays the authority.

:func:`fast_telemetry` returns the exact :class:`~forewarn.contract.Telemetry` that
:func:`forewarn.contract.validate` would return, or ``None`` whenever it is not certain (any event,
any extra field, any doubt about a value): the caller then runs the full validation, which also
produces the reason code of a bad message. It never rejects anything itself, so validation
semantics are those of the contract by construction (a property test compares both).

Why it is faster: orjson instead of ``json.loads`` with a Python ``object_pairs_hook``. Duplicate
keys, which orjson silently collapses, are ruled out by counting quote characters: with no
backslash in the payload every ``"`` delimits a string, so ``count('"') == 2 * (keys + string
values)`` holds exactly when no key was dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

import orjson

from forewarn.assets import MachineSpec
from forewarn.contract import MAX_SEQ, SCHEMA_VERSION, Limits, Telemetry, parse_ts
from forewarn.errors import ContractError

_FIELDS = frozenset(("schema", "machine", "ts", "seq", "values", "regime"))
_NAME_MAX = 128
_QUOTE = ord('"')
_BOM = b"\xef\xbb\xbf"


def fast_telemetry(
    topic: str,
    payload: bytes,
    machines: Mapping[str, MachineSpec],
    *,
    now: datetime,
    limits: Limits,
    root: str,
) -> Telemetry | None:
    """The validated telemetry for a plain, well-formed message of a known machine, else None."""
    if len(payload) > limits.max_bytes or b"\\" in payload or payload.startswith(_BOM):
        return None
    parts = topic.split("/")
    root_parts = root.count("/") + 1
    if len(parts) != root_parts + 3 or parts[-1] != "telemetry" or not topic.startswith(root):
        return None
    site, machine = parts[-3], parts[-2]
    if not site or not machine or "/".join(parts[:root_parts]) != root:
        return None
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if type(body) is not dict or not body.keys() <= _FIELDS:
        return None
    values_raw = body.get("values")
    if type(values_raw) is not dict or not values_raw:
        return None
    # keys of body and values, plus the two string values machine and ts
    if payload.count(_QUOTE) != 2 * (len(body) + len(values_raw) + 2):
        return None
    schema = body.get("schema", SCHEMA_VERSION)
    if type(schema) is not int or schema != SCHEMA_VERSION:
        return None
    name = body.get("machine")
    if type(name) is not str or name != machine or len(name) > _NAME_MAX:
        return None
    spec = machines.get(machine)
    if spec is None or spec.site_id != site:
        return None
    raw_ts = body.get("ts")
    if type(raw_ts) is not str:
        return None
    try:
        ts = parse_ts(raw_ts, now, limits)
    except ContractError:
        return None
    seq = body.get("seq")
    if type(seq) is not int or not 0 <= seq <= MAX_SEQ:
        return None
    regime = body.get("regime")
    if regime is not None and (type(regime) is not int or not 0 <= regime < 1000):
        return None
    since = spec.since
    if since is not None and ts < since:
        spec = spec.at(ts)  # older than the newest registry change: the version of then
    bounds = spec.bounds
    values: dict[str, float | None] = {}
    for key, v in values_raw.items():
        b = bounds.get(key)
        if b is None:
            return None
        if v is None:
            values[key] = None
            continue
        tv = type(v)
        if tv is not float and tv is not int:
            return None
        f = float(v)
        if not math.isfinite(f) or not b[0] <= f <= b[1]:
            return None
        values[key] = f
    return Telemetry(site, machine, ts, seq, values, regime, None, known=True)

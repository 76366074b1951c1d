"""`forewarn bench validate`: the contract's validator alone vs ingest's classify (fast path first).

Ingest keeps a second, conservative parser (:mod:`ingest.fastpath`) in front of the contract's
:func:`forewarn.contract.validate`. The house rule is that a second path stays only where a benchmark
shows it is needed; this is that benchmark. Both passes validate the same pre-generated payloads of
the ingest benchmark in the same process, and the result checks that both produce equal messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from forewarn.contract import Limits, Message, topic_for, validate
from ingest.fastpath import fast_telemetry
from tools.bench.ingest import SITE, bench_registry, make_messages

ROOT = "forewarn/v1"


def _time_pass(fn: Callable[[str, bytes], Message | None], batch: list[tuple[str, bytes]]) -> float:
    """Seconds to run ``fn`` over ``batch`` once."""
    t0 = time.perf_counter()
    for topic, payload in batch:
        fn(topic, payload)
    return time.perf_counter() - t0


def run_validate_bench(messages: int, *, rounds: int = 5) -> dict[str, Any]:
    """Messages per second through the contract validator and through the fast path + fallback."""
    specs = bench_registry().specs()
    now = datetime.now(UTC)
    limits = Limits()
    batch = [(topic_for(SITE, m, "telemetry", ROOT), p) for m, _, p in make_messages(messages)]

    def contract(topic: str, payload: bytes) -> Message:
        return validate(topic, payload, specs, now=now, limits=limits, root=ROOT)

    def fast_then_contract(topic: str, payload: bytes) -> Message:
        msg = fast_telemetry(topic, payload, specs, now=now, limits=limits, root=ROOT)
        return msg if msg is not None else contract(topic, payload)

    same = all(contract(t, p) == fast_then_contract(t, p) for t, p in batch[:1000])
    taken = sum(
        fast_telemetry(t, p, specs, now=now, limits=limits, root=ROOT) is not None for t, p in batch
    )
    # alternate the passes so that a change of machine load hits both alike; keep the best round
    slow_s, fast_s = [], []
    for _ in range(rounds):
        slow_s.append(_time_pass(contract, batch))
        fast_s.append(_time_pass(fast_then_contract, batch))
    slow_rate = messages / min(slow_s)
    fast_rate = messages / min(fast_s)
    return {
        "messages": messages,
        "rounds": rounds,
        "contract_msgs_per_s": round(slow_rate),
        "fastpath_msgs_per_s": round(fast_rate),
        "speedup": round(fast_rate / slow_rate, 2),
        "contract_us_per_msg": round(1e6 / slow_rate, 1),
        "fastpath_us_per_msg": round(1e6 / fast_rate, 1),
        "same_messages": same,
        "fastpath_taken": taken,
    }

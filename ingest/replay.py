"""Re-ingest dead letters that validate now (after an operator fixed the registry, say).

``forewarn deadletters replay`` calls :func:`replay_dead_letters`. Each dead letter is validated
again with today's registry and limits, exactly as a live message (so by the registry's version in
effect at the message's timestamp: a bounds change is not retroactive); the ones that pass are written
with the live writer's semantics ((machine, seq) identity, events idempotent) and marked
``replayed_at`` in the same transaction. Replaying again skips marked ones, and a reading written
already is an exact redelivery anyway: replay is idempotent. Only dead letters whose stored excerpt
is the whole message can be replayed.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import orjson
import psycopg

from forewarn.contract import Event, Limits, Telemetry, validate
from forewarn.errors import ContractError
from forewarn.settings import Settings
from forewarn.storage.assets import register_unknown_machine
from forewarn.storage.dead_letters import DeadLetter, list_dead_letters, mark_replayed
from forewarn.storage.readings import insert_events, write_readings
from ingest.pipeline import load_specs
from ingest.writer import sequence_readings

log = logging.getLogger(__name__)
PAGE = 500


@dataclass
class ReplayResult:
    replayed: int = 0  # dead letters re-ingested and marked
    readings: int = 0  # new reading rows (exact redeliveries add none)
    events: int = 0
    still_rejected: Counter[str] = field(default_factory=Counter)  # by today's reason
    incomplete: int = 0  # only an excerpt was kept: cannot be replayed


def replay_dead_letters(
    conn: psycopg.Connection,
    settings: Settings,
    *,
    now: datetime,
    reason: str | None = None,
    limit: int = 100_000,
) -> ReplayResult:
    """Validate and re-ingest up to ``limit`` unreplayed dead letters (of one ``reason``)."""
    ing = settings.ingest
    specs = load_specs(conn, ing.auto_register)
    limits = Limits(
        max_bytes=ing.max_payload_bytes,
        max_future_s=ing.max_future_s,
        auto_register=ing.auto_register,
        min_ts=ing.min_timestamp,
    )
    result = ReplayResult()
    after, seen = 0, 0
    while seen < limit:
        page = list_dead_letters(
            conn, reason=reason, limit=min(PAGE, limit - seen), after_id=after,
            include_replayed=False,
        )  # fmt: skip
        if not page:
            break
        seen += len(page)
        after = page[-1].id
        good: list[tuple[DeadLetter, Telemetry | Event]] = []
        for letter in page:
            if not letter.complete:
                result.incomplete += 1
                continue
            try:
                msg = validate(
                    letter.topic, letter.payload, specs, now=now, limits=limits,
                    root=settings.mqtt.topic_root,
                )  # fmt: skip
            except ContractError as exc:
                result.still_rejected[exc.reason] += 1
                continue
            good.append((letter, msg))
        _write(conn, good, ing.reorder_window, now, result)
    return result


def _write(
    conn: psycopg.Connection,
    good: list[tuple[DeadLetter, Telemetry | Event]],
    window: int,
    now: datetime,
    result: ReplayResult,
) -> None:
    readings = [(d, m) for d, m in good if isinstance(m, Telemetry)]
    events = [(d, m) for d, m in good if isinstance(m, Event)]
    with conn.transaction():
        for _d, m in good:
            if not m.known:
                register_unknown_machine(conn, m.machine, m.site)
        keep, flags, rejected = sequence_readings([m for _d, m in readings], window)
        rows = [
            (m.machine, m.seq, m.ts, m.regime, orjson.dumps(m.values).decode())
            for m in (readings[i][1] for i in keep)
        ]
        verdicts = write_readings(conn, rows, reorder_window=window, flagged=flags)
        refused = {i for i, _r, _d in rejected} | {keep[i] for i, _r, _d in verdicts.rejected}
        for _i, why, _detail in rejected + verdicts.rejected:
            result.still_rejected[why] += 1
        result.readings += verdicts.stored
        result.events += insert_events(conn, [m for _d, m in events])  # type: ignore[misc]
        ids = [d.id for i, (d, _m) in enumerate(readings) if i not in refused]
        ids += [d.id for d, _m in events]
        result.replayed += mark_replayed(conn, ids, now)

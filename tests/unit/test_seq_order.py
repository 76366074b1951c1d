"""Order checks inside one ingest batch (ingest.writer.sequence_readings), before the database."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from ingest.writer import sequence_readings
from tests.factories import make_telemetry


def test_in_batch_duplicates_conflicts_reorders_and_stale_seqs() -> None:
    a = [make_telemetry("m1", s) for s in (10, 11, 12)]
    redelivered = make_telemetry("m1", 11)  # identical: dropped silently
    conflict = replace(make_telemetry("m1", 12), ts=a[2].ts + timedelta(seconds=1))
    late = make_telemetry("m1", 9)  # one below the newest: within the window, flagged
    stale = make_telemetry("m1", 1)  # 11 below the newest, window 5
    other = make_telemetry("m2", 1)  # another machine has its own order
    batch = [*a, redelivered, conflict, late, stale, other]
    keep, flags, rejected = sequence_readings(batch, window=5)
    assert keep == [0, 1, 2, 5, 7]
    assert flags == [False, False, False, True, False]
    assert [(i, reason) for i, reason, _ in rejected] == [(4, "seq_conflict"), (6, "stale_seq")]

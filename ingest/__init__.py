"""Ingest: MQTT telemetry and events into PostgreSQL with no loss, no duplicates and bounded memory.

One worker = one paho client (MQTT 5, QoS 1, fixed client id, persistent session, ``manual_ack``),
a bounded queue and a writer thread. ``on_message`` only validates (:mod:`ingest.fastpath`, then
:func:`forewarn.contract.validate`) and enqueues; the writer commits a batch (readings, events and
dead letters in one transaction, idempotent on the natural key) and only then acknowledges its
messages. A crash therefore loses nothing: unacknowledged messages are redelivered and stored
once. Start a worker with :func:`run_ingest`.

Scale-out and per-machine ownership
-----------------------------------
Several workers share the load through an MQTT shared subscription
(``FOREWARN_INGEST__SHARED_GROUP=ingest``, each worker with its own ``FOREWARN_MQTT__CLIENT_ID``):
the broker hands each message to exactly one member of the group, and a message a worker did not
acknowledge (it crashed) is redelivered to the same session when it comes back. Correctness never
depends on which worker gets a message: ingest keeps no per-machine state; every write is
idempotent on (machine, seq, ts), so a redelivery to any worker is a no-op.

Per-machine state of later stages (online features, streaming model state, alert hysteresis)
is *not* kept in ingest workers, because a shared subscription scatters one machine's messages over
all workers. Its one owner is the database: the scorer reads a machine's ordered readings from
``readings`` (ordered by seq, whatever worker wrote them) and keeps its checkpoint in
``model_checkpoints``; alerts are rows with a one-open-alert-per-(machine, mode) unique index.
If per-machine state ever has to live in a stream consumer's memory, partition the topics
instead of sharing them: worker *k* of *n* subscribes to the sites (or to a topic level
``.../p{hash(machine) % n}/...``) it owns, so each machine has exactly one consumer.

A persistent session in a shared group keeps receiving its share while its worker is down (the
broker queues it); a worker retired for good must come back once under the same client id to
drain, or its share is dropped when the session expires (7 days by default).
"""

from __future__ import annotations

from ingest.pipeline import CommitInfo
from ingest.service import IngestResult, run_ingest

__all__ = ["CommitInfo", "IngestResult", "run_ingest"]

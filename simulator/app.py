"""The simulator process: build a plant (or a replay), pace it, send it to a sink, show progress.

:func:`stream_to` is the one loop every mode uses: it paces messages by their simulated timestamps
(``speed`` = simulated seconds per wall second, 0 = as fast as possible), hands maintenance orders
from the broker to the plant between messages, and reports what it sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from forewarn.contract import Message, Telemetry, encode, topic_for
from forewarn.errors import ForewarnError, NotFound
from forewarn.factory import Factory
from simulator.engine import Plant
from simulator.faults import Malformed
from simulator.mqtt import MqttPublisher, Stopped
from simulator.sinks import JsonlSink, Sink

log = logging.getLogger(__name__)

PROGRESS_EVERY = 2000  # messages between progress updates
CHECKPOINT_EVERY_S = 30.0  # wall seconds between saves of a resumable plant's state


@dataclass(slots=True)
class Report:
    messages: int = 0
    telemetry: int = 0
    events: int = 0
    failures: int = 0
    malformed: int = 0
    orders: int = 0
    wall_s: float = 0.0
    sim_hours: float = 0.0
    resumed: bool = False
    clock_start: str = ""
    clock_end: str = ""

    def as_dict(self) -> dict[str, Any]:
        rate = self.messages / self.wall_s if self.wall_s > 0 else 0.0
        return {
            "messages": self.messages,
            "telemetry": self.telemetry,
            "events": self.events,
            "failures": self.failures,
            "malformed": self.malformed,
            "orders_applied": self.orders,
            "sim_hours": round(self.sim_hours, 3),
            "resumed": self.resumed,
            "clock_start": self.clock_start,
            "clock_end": self.clock_end,
            "wall_s": round(self.wall_s, 3),
            "messages_per_s": round(rate, 1),
        }


def _apply_orders(plant: Plant | None, publisher: MqttPublisher | None) -> int:
    if plant is None or publisher is None:
        return 0
    n = 0
    while not publisher.commands.empty():
        cmd = publisher.commands.get_nowait()
        try:
            plant.apply_maintenance(cmd.machine, cmd.action, alert_id=cmd.alert_id)
            n += 1
            log.info(
                "order %s on %s (alert %s) at %s", cmd.action, cmd.machine, cmd.alert_id, plant.now
            )
        except (NotFound, ValueError) as exc:
            log.warning("dropped order for %s: %s", cmd.machine, exc)
    return n


def stream_to(
    items: Iterable[Message | Malformed],
    sink: Sink,
    *,
    root: str,
    start: datetime,
    hours: float,
    speed: float = 0.0,
    plant: Plant | None = None,
    progress: bool = False,
    stop: threading.Event | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> Report:
    """Send every message to ``sink`` in order, paced to ``speed``; return what was sent.

    Setting ``stop`` (e.g. from a SIGTERM handler) ends the stream after the current message, or
    while waiting for an unavailable broker; the sink is closed (pending acks awaited) either way.
    A message taken but not sent is given back to ``plant`` (so a saved plant resumes with it);
    ``checkpoint`` is called every CHECKPOINT_EVERY_S between messages.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    publisher = sink if isinstance(sink, MqttPublisher) else None
    stop = stop or threading.Event()
    if publisher is not None:
        publisher.stop = stop
    rep = Report()
    wall0 = time.monotonic()
    last_ts = start
    bar = Progress(
        TextColumn("simulating"),
        BarColumn(),
        TextColumn("{task.completed:.1f}/{task.total:.1f} sim h  {task.fields[n]} msgs"),
        TimeRemainingColumn(),
        disable=not progress,
    )
    next_checkpoint = wall0 + CHECKPOINT_EVERY_S
    unsent: Message | Malformed | None = None
    try:
        with bar:
            task = bar.add_task("sim", total=hours, n=0)
            for item in items:
                unsent = item
                if stop.is_set():
                    break
                if speed > 0:
                    ahead = (item.ts - start).total_seconds() / speed - (time.monotonic() - wall0)
                    if ahead > 0 and stop.wait(ahead):
                        break
                _send(item, sink, root, rep)
                unsent = None
                last_ts = item.ts
                if checkpoint is not None and time.monotonic() >= next_checkpoint:
                    checkpoint()
                    next_checkpoint = time.monotonic() + CHECKPOINT_EVERY_S
                if publisher is not None and not publisher.commands.empty():
                    rep.orders += _apply_orders(plant, publisher)
                if rep.messages % PROGRESS_EVERY == 0:
                    done_h = (item.ts - start).total_seconds() / 3600.0
                    bar.update(task, completed=done_h, n=rep.messages)
            bar.update(task, completed=hours, n=rep.messages)
    except Stopped:
        log.warning("stopped while waiting for the broker")
    finally:
        if unsent is not None and plant is not None:
            plant.unsend(unsent)
        sink.close()
    rep.wall_s = time.monotonic() - wall0
    rep.sim_hours = (last_ts - start).total_seconds() / 3600.0
    return rep


def _send(item: Message | Malformed, sink: Sink, root: str, rep: Report) -> None:
    if isinstance(item, Malformed):
        sink.send(topic_for(item.site, item.machine, "telemetry", root), item.payload, item.reason)
        rep.malformed += 1
    elif isinstance(item, Telemetry):
        sink.send(topic_for(item.site, item.machine, "telemetry", root), encode(item))
        rep.telemetry += 1
    else:
        sink.send(topic_for(item.site, item.machine, "event", root), encode(item))
        rep.events += 1
        rep.failures += item.event == "failure"
    rep.messages += 1


def open_sink(
    *,
    jsonl: Path | None,
    mqtt_url: str | None,
    qos: int,
    root: str,
    username: str | None = None,
    password: str | None = None,
    commands: bool = True,
) -> Sink:
    """A connected sink: the JSON-lines file if given, else the broker at ``mqtt_url``."""
    if jsonl is not None:
        return JsonlSink(jsonl)
    if mqtt_url is None:
        raise ForewarnError(
            "no output: pass --jsonl FILE or --mqtt-url URL, or set FOREWARN_MQTT__URL "
            "(the demo starts a local broker)"
        )
    pub = MqttPublisher(
        mqtt_url,
        qos=qos,
        root=root,
        username=username,
        password=password,
        subscribe_commands=commands,
    )
    pub.connect()
    return pub


def simulate(
    factory: Factory,
    *,
    hours: float,
    seed: int,
    sink: Sink,
    speed: float = 0.0,
    bad_rate: float | None = None,
    root: str | None = None,
    progress: bool = False,
    stop: threading.Event | None = None,
    seq_base: int = 0,
    state: Path | None = None,
) -> Report:
    """Run the plant for ``hours`` simulated hours into ``sink`` (orders from an MQTT sink apply).

    With ``state``, a plant saved there by an earlier run continues exactly (clock, sequence
    numbers, every machine's wear, faults, repairs in progress and orders), and the plant is
    saved there again when the run ends (and every CHECKPOINT_EVERY_S while it runs).
    """
    plant = Plant.restore(state, factory, seed) if state is not None and state.exists() else None
    resumed = plant is not None
    if plant is None:
        plant = Plant(factory, seed, bad_rate=bad_rate, seq_base=seq_base)
    clock_start = plant.now
    p = plant
    report = stream_to(
        plant.run(hours),
        sink,
        root=root or factory.topic_root,
        start=clock_start,
        hours=hours,
        speed=speed,
        plant=plant,
        progress=progress,
        stop=stop,
        checkpoint=None if state is None else (lambda: p.save(state)),
    )
    if state is not None:
        plant.save(state)
    report.resumed = resumed
    report.clock_start = clock_start.isoformat()
    report.clock_end = plant.now.isoformat()
    if resumed:
        log.info("resumed the plant saved in %s at %s", state, clock_start.isoformat())
    return report

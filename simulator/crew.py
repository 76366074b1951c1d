"""A simulated maintenance crew: acts on alerts through the public API, as a CMMS would.

It polls ``/v1/alerts/changes`` and, for every new alert, works in plant time (wall delay =
plant hours x 3600 / speed)::

    alert raised --ACK_AFTER_H--> acknowledge --inspection_hours--> inspect:
        nothing found (a share of the alerts, more for low-probability ones) -> dismiss
        else --planned_hours (the machine type's cost sheet)--> resolve with the maintenance
             (repair for high/critical alerts, preventive otherwise) -> the plant gets the order

An alert the engine closes first (failed, cleared) is dropped; a 409 from the API means exactly
that. Draws come from a seeded generator, so a run is repeatable for a given stream of alerts.
"""

from __future__ import annotations

import heapq
import json
import logging
import random
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from forewarn.factory import Factory

log = logging.getLogger(__name__)

ACK_AFTER_H = 0.5  # plant hours from an alert to its acknowledgement
FALSE_ALARM_SHARE = 0.1  # inspections that find nothing ...
FALSE_ALARM_SHARE_LOW_PROB = 0.35  # ... when the model was not sure (failure_prob < 0.75)
POLL_S = 0.5  # wall seconds between polls of the change feed
ACTIVE = ("open", "acknowledged")


@dataclass(slots=True)
class CrewStats:
    alerts_seen: int = 0
    acknowledged: int = 0
    resolved: int = 0
    dismissed: int = 0
    closed_before_action: int = 0  # the engine closed it (failed, cleared) before the crew acted
    api_errors: int = 0


class Crew:
    """The crew's state: a cursor on the change feed and a schedule of pending steps."""

    def __init__(
        self, client: httpx.Client, factory: Factory, *, speed: float, seed: int = 0
    ) -> None:
        self.client = client
        self.speed = speed
        self.rng = random.Random(seed)
        self.inspection_h = factory.inspection_hours
        self.costs = {m.id: t.costs for m, t in factory.machines()}
        self.cursor = 0
        self.schedule: list[tuple[float, int, str]] = []  # (due monotonic, alert id, step)
        self.alerts: dict[int, dict[str, Any]] = {}
        self.stats = CrewStats()

    def _wall(self, plant_h: float) -> float:
        return plant_h * 3600.0 / self.speed if self.speed > 0 else 0.0

    def poll(self, now: float) -> None:
        """Read new alert changes; schedule the first step of each new alert."""
        while True:
            r = self.client.get("/v1/alerts/changes", params={"cursor": self.cursor, "limit": 500})
            r.raise_for_status()
            page = r.json()
            for a in page["alerts"]:
                aid = int(a["id"])
                if a["status"] not in ACTIVE:
                    self.alerts.pop(aid, None)
                    continue
                if aid not in self.alerts:
                    self.stats.alerts_seen += 1
                    heapq.heappush(self.schedule, (now + self._wall(ACK_AFTER_H), aid, "ack"))
                self.alerts[aid] = a
            self.cursor = int(page["next_cursor"])
            if not page["has_more"]:
                return

    def due(self, now: float) -> None:
        """Carry out every step whose time has come."""
        while self.schedule and self.schedule[0][0] <= now:
            _, aid, step = heapq.heappop(self.schedule)
            alert = self.alerts.get(aid)
            if alert is None:  # closed meanwhile (by the engine, or by someone else)
                self.stats.closed_before_action += 1
                continue
            costs = self.costs.get(alert["machine_id"])
            if step == "ack":
                if self._post(aid, "acknowledge", {"reason": "crew on it"}):
                    self.stats.acknowledged += 1
                    heapq.heappush(
                        self.schedule, (now + self._wall(self.inspection_h), aid, "inspect")
                    )
            elif step == "inspect":
                prob = float(alert.get("failure_prob") or 0.0)
                share = FALSE_ALARM_SHARE_LOW_PROB if prob < 0.75 else FALSE_ALARM_SHARE
                if self.rng.random() < share:
                    if self._post(aid, "dismiss", {"reason": "inspection found nothing"}):
                        self.stats.dismissed += 1
                    self.alerts.pop(aid, None)
                else:
                    planned_h = costs.planned_hours if costs is not None else 1.0
                    heapq.heappush(self.schedule, (now + self._wall(planned_h), aid, "resolve"))
            elif step == "resolve":
                action = "repair" if alert.get("severity") in ("high", "critical") else "preventive"
                note = f"crew: {action} of {alert['mode']} planned after inspection"
                if self._post(aid, "resolve", {"action": action, "note": note}):
                    self.stats.resolved += 1
                self.alerts.pop(aid, None)

    def _post(self, aid: int, verb: str, body: dict[str, Any]) -> bool:
        r = self.client.post(
            f"/v1/alerts/{aid}/{verb}", json=body, headers={"Idempotency-Key": f"crew-{aid}-{verb}"}
        )
        if r.status_code in (404, 409):  # closed by the engine first: nothing to do any more
            self.stats.closed_before_action += 1
            self.alerts.pop(aid, None)
            return False
        r.raise_for_status()
        return True

    def run(self, stop: threading.Event) -> CrewStats:
        """Poll and act until ``stop``; API errors are counted, logged and retried."""
        while not stop.is_set():
            now = time.monotonic()
            try:
                self.poll(now)
                self.due(now)
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                self.stats.api_errors += 1
                log.warning("crew: API call failed (%s); retrying", exc)
            stop.wait(POLL_S)
        return self.stats


def run_crew(
    api_url: str,
    key: str,
    factory: Factory,
    *,
    speed: float,
    seed: int,
    stop: threading.Event,
    summary: Path | None = None,
) -> CrewStats:
    """Run a crew against the API at ``api_url`` until ``stop``; write its stats to ``summary``."""
    with httpx.Client(base_url=api_url, headers={"X-API-Key": key}, timeout=10.0) as client:
        stats = Crew(client, factory, speed=speed, seed=seed).run(stop)
    log.info("crew stopped: %s", asdict(stats))
    if summary is not None:
        summary.write_text(json.dumps(asdict(stats)) + "\n", encoding="utf-8")
    return stats

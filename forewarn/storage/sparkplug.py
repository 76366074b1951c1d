"""The Sparkplug B metric catalogue: what births declared, and where each metric is stored."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from psycopg import Connection
from psycopg.rows import dict_row

from forewarn.assets import Costs, MachineType, SensorSpec
from forewarn.storage.assets import ensure_machine, ensure_sensor, get_machine_type, upsert_type

ACTOR = "sparkplug"  # who the asset history says registered a device
NO_COSTS = Costs(0.0, 0.0, 0.0, 0.0, 8.0, 2.0)


class SparkplugMetricRow(NamedTuple):
    group_id: str
    edge_node: str
    device: str  # '' for the node's own metrics
    name: str
    alias: int | None
    datatype: str
    unit: str | None
    machine_id: str
    sensor: str | None
    born_at: datetime


def upsert_sparkplug_metrics(conn: Connection, rows: Sequence[SparkplugMetricRow]) -> int:
    """Record what births declared; a later birth replaces a metric's alias, type, unit and mapping."""
    if not rows:
        return 0
    latest = {(r.group_id, r.edge_node, r.device, r.name): r for r in rows}  # last birth wins
    with conn.cursor() as cur:
        cur.executemany(
            "insert into sparkplug_metrics (group_id, edge_node, device, name, alias, datatype,"
            " unit, machine_id, sensor, born_at) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " on conflict (group_id, edge_node, device, name) do update set"
            " alias = excluded.alias, datatype = excluded.datatype, unit = excluded.unit,"
            " machine_id = excluded.machine_id, sensor = excluded.sensor,"
            " born_at = excluded.born_at, updated_at = now()"
            " where sparkplug_metrics.born_at <= excluded.born_at",
            list(latest.values()),
        )
    return len(latest)


def sparkplug_metrics(conn: Connection, machine_id: str | None = None) -> list[dict[str, Any]]:
    """The catalogue (of one machine), ordered by node, device and name."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select group_id, edge_node, device, name, alias, datatype, unit, machine_id, sensor,"
            " born_at from sparkplug_metrics where %(m)s::text is null or machine_id = %(m)s"
            " order by group_id, edge_node, device, name",
            {"m": machine_id},
        )
        return cur.fetchall()


def register_sparkplug_device(
    conn: Connection,
    machine_id: str,
    *,
    site_id: str,
    type_id: str,
    sensors: Sequence[SensorSpec],
    now: datetime,
) -> bool:
    """Register a device first seen in a birth: its own machine type with the birth's sensors
    (units from ``engUnit``, bounds from ``engLow``/``engHigh``), then the machine. A machine that
    already exists keeps its type; a known type only gains the sensors it lacks. True if created.
    """
    if get_machine_type(conn, type_id) is None:
        t = MachineType(type_id, f"Sparkplug device {machine_id}", tuple(sensors), (), NO_COSTS)
        upsert_type(conn, t, None, actor=ACTOR, now=now)
    else:
        for sensor in sensors:
            ensure_sensor(conn, type_id, sensor, actor=ACTOR, now=now)
    return ensure_machine(conn, machine_id, site_id=site_id, type_id=type_id, actor=ACTOR, now=now)

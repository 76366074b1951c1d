"""TimescaleDB steps for the roll-up tables, run by migrate after the SQL migrations.

Migration 050 creates ``readings_1m`` and ``readings_1h`` as plain tables. Then, per server:

- plain PostgreSQL: nothing more; the application maintains both tables;
- TimescaleDB, Apache edition: both become hypertables (``drop_chunks`` for retention);
- TimescaleDB, community licence: ``readings_1m`` becomes a hypertable and ``readings_1h`` a
  continuous aggregate over it (real-time, with a refresh policy), and ``readings`` and
  ``readings_1m`` get compression policies.

Minutes stay application-maintained even with the community licence: the readings' sensor values
are a jsonb object, and continuous aggregates before TimescaleDB 2.23 reject the set-returning
``jsonb_each`` needed to expand it (timescale/timescaledb#1717, allowed by PR #8703).
"""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql

from forewarn.errors import StorageError
from forewarn.storage.timescale import enable_hypertables, timescale_license, timescale_schema

log = logging.getLogger(__name__)

ROLLUP_CHUNKS = {"readings_1m": "7 days", "readings_1h": "30 days"}
# Compress chunks once they are older than any refresh or grace window can reach back.
COMPRESS_AFTER = "7 days"
# Continuous aggregate policy: re-materialise hours up to 3 days back, every 5 minutes.
CAGG_START_OFFSET = "3 days"
CAGG_END_OFFSET = "1 hour"
CAGG_SCHEDULE = "5 minutes"

_HOUR_AGGREGATE = """
create materialized view readings_1h
with (timescaledb.continuous, timescaledb.materialized_only = false) as
select machine_id, sensor, {ts}.time_bucket('1 hour'::interval, ts) as ts,
       sum(n) as n, sum(total) as total, min(min_value) as min_value, max(max_value) as max_value
  from readings_1m
 group by machine_id, sensor, {ts}.time_bucket('1 hour'::interval, ts)
with no data
"""
# table -> (segmentby, orderby); the primary key's columns are all in one or the other.
_COMPRESSION = {
    "readings": ("machine_id", "ts desc, seq desc"),
    "readings_1m": ("machine_id", "ts desc, sensor"),
}


def _relkind(conn: psycopg.Connection, name: str) -> str | None:
    row = conn.execute(
        "select c.relkind from pg_class c where c.oid = to_regclass(%s)", (name,)
    ).fetchone()
    return None if row is None else str(row[0])


def _community_objects(conn: psycopg.Connection, schema: str) -> None:
    ts = sql.Identifier(schema)
    if _relkind(conn, "readings_1h") == "r":
        # Still the plain table from migration 050; its rows are derived data the aggregate
        # recomputes from readings_1m.
        conn.execute("drop table readings_1h")
        conn.execute(sql.SQL(_HOUR_AGGREGATE).format(ts=ts))
        log.info("readings_1h is a continuous aggregate over readings_1m")
    conn.execute(
        sql.SQL(
            "select {}.add_continuous_aggregate_policy('readings_1h'::regclass,"
            " start_offset => %s::interval, end_offset => %s::interval,"
            " schedule_interval => %s::interval, if_not_exists => true)"
        ).format(ts),
        (CAGG_START_OFFSET, CAGG_END_OFFSET, CAGG_SCHEDULE),
    )
    for table, (segment_by, order_by) in _COMPRESSION.items():
        enabled = conn.execute(
            "select compression_enabled from timescaledb_information.hypertables"
            " where format('%%I.%%I', hypertable_schema, hypertable_name)::regclass"
            " = %s::regclass",
            (table,),
        ).fetchone()
        if not (enabled and enabled[0]):
            conn.execute(
                sql.SQL(
                    "alter table {} set (timescaledb.compress,"
                    " timescaledb.compress_segmentby = {}, timescaledb.compress_orderby = {})"
                ).format(sql.Identifier(table), sql.Literal(segment_by), sql.Literal(order_by))
            )
        conn.execute(
            sql.SQL(
                "select {}.add_compression_policy(%s::regclass, %s::interval, if_not_exists => true)"
            ).format(ts),
            (table, COMPRESS_AFTER),
        )


def prepare_rollups(conn: psycopg.Connection) -> None:
    """Make the roll-up tables use what the server offers (see the module docstring); idempotent.

    A no-op on plain PostgreSQL. Raises StorageError when TimescaleDB refuses a step.
    """
    if _relkind(conn, "readings_1m") is None:
        return  # migration 050 not applied in this schema
    if timescale_license(conn) != "timescale":
        # (a readings_1h that is a continuous aggregate from an earlier licence is left alone)
        enable_hypertables(
            conn, {t: i for t, i in ROLLUP_CHUNKS.items() if _relkind(conn, t) == "r"}
        )
        return
    enable_hypertables(conn, {"readings_1m": ROLLUP_CHUNKS["readings_1m"]})
    schema = timescale_schema(conn)
    if schema is None:  # enable_hypertables creates the extension; this is a broken server
        raise StorageError("TimescaleDB reports a licence but has no extension in this database")
    try:
        with conn.transaction():
            _community_objects(conn, schema)
    except psycopg.Error as exc:
        raise StorageError(f"could not set up TimescaleDB roll-ups: {exc}".strip()) from exc

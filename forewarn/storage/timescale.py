"""TimescaleDB, used when the server offers it: detection, licence, hypertables.

The migrate step calls these after the plain SQL migrations; nothing here is required for Forewarn
to run on plain PostgreSQL. Three kinds of server:

- plain PostgreSQL (no extension): ``timescale_available`` is False, ``enable_hypertables`` does nothing;
- TimescaleDB, Apache-2 edition (Debian's build, ``timescale_license == "apache"``): hypertables,
  ``time_bucket``, ``drop_chunks``; no compression, continuous aggregates or policies;
- TimescaleDB, community licence (``"timescale"``): all of the above plus those.

The extension is created in schema ``public`` (one per database, whatever schema a caller's
search_path points at), so callers qualify its functions with ``timescale_schema(conn)``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import psycopg
from psycopg import sql

from forewarn.errors import StorageError

log = logging.getLogger(__name__)

EXTENSION = "timescaledb"
EXTENSION_SCHEMA = "public"
# Serialises "create extension" between processes that migrate at the same time ("Tsdb").
EXTENSION_LOCK_ID = 0x54736462


def _extension_schema(conn: psycopg.Connection) -> str | None:
    row = conn.execute(
        "select n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace"
        " where e.extname = %s",
        (EXTENSION,),
    ).fetchone()
    return None if row is None else str(row[0])


def _preloaded(conn: psycopg.Connection) -> bool | None:
    """Whether the server preloads the library; None when this role may not read the setting."""
    try:
        with conn.transaction():
            row = conn.execute("select current_setting('shared_preload_libraries')").fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return None
    libs = {part.strip().strip('"') for part in str(row[0] if row else "").split(",")}
    return EXTENSION in libs


def timescale_available(conn: psycopg.Connection) -> bool:
    """True when this database has the extension or the server can create it.

    Listed in pg_available_extensions, and (as TimescaleDB refuses to be created otherwise)
    either already created here or preloaded by the server.
    """
    row = conn.execute(
        "select exists (select 1 from pg_available_extensions where name = %s)", (EXTENSION,)
    ).fetchone()
    if not (row and row[0]):
        return False
    if _extension_schema(conn) is not None:
        return True
    return _preloaded(conn) is not False


def timescale_schema(conn: psycopg.Connection) -> str | None:
    """Schema holding the extension's functions (create_hypertable, time_bucket ...), or None."""
    return _extension_schema(conn)


def timescale_license(conn: psycopg.Connection) -> str | None:
    """The loaded library's licence ('apache' or 'timescale'), None when TimescaleDB is not loaded."""
    row = conn.execute("select current_setting('timescaledb.license', true)").fetchone()
    value = row[0] if row else None
    return str(value) if value else None


def _ensure_extension(conn: psycopg.Connection) -> str:
    schema = _extension_schema(conn)
    if schema is not None:
        return schema
    conn.execute("select pg_advisory_xact_lock(%s)", (EXTENSION_LOCK_ID,))
    conn.execute(
        sql.SQL("create extension if not exists {} with schema {}").format(
            sql.Identifier(EXTENSION), sql.Identifier(EXTENSION_SCHEMA)
        )
    )
    log.info("created extension %s in schema %s", EXTENSION, EXTENSION_SCHEMA)
    return _extension_schema(conn) or EXTENSION_SCHEMA


def enable_hypertables(
    conn: psycopg.Connection, tables: Mapping[str, str], *, time_column: str = "ts"
) -> None:
    """Make each table (name -> chunk interval, e.g. ``{"readings": "1 day"}``) a hypertable.

    Does nothing when the server has no TimescaleDB. Creates the extension if needed, converts
    tables with their existing rows (``migrate_data``) and is idempotent: a table that is already
    a hypertable keeps its chunks and gets the given interval for new ones. Names resolve through
    the connection's search_path. Raises StorageError when the server refuses.
    """
    if not tables:
        return
    if not timescale_available(conn):
        log.info("TimescaleDB not available: %s stay plain tables", ", ".join(tables))
        return
    try:
        with conn.transaction():
            schema = sql.Identifier(_ensure_extension(conn))
            for table, interval in tables.items():
                is_hyper = conn.execute(
                    "select exists (select 1 from timescaledb_information.hypertables"
                    " where format('%%I.%%I', hypertable_schema, hypertable_name)::regclass"
                    " = %s::regclass)",
                    (table,),
                ).fetchone()
                if is_hyper and is_hyper[0]:
                    conn.execute(
                        sql.SQL(
                            "select {}.set_chunk_time_interval(%s::regclass, %s::interval)"
                        ).format(schema),
                        (table, interval),
                    )
                    continue
                conn.execute(
                    sql.SQL(
                        "select {}.create_hypertable(%s::regclass, %s::name,"
                        " chunk_time_interval => %s::interval,"
                        " migrate_data => true, if_not_exists => true)"
                    ).format(schema),
                    (table, time_column, interval),
                )
                log.info("%s is a hypertable on %s, chunks of %s", table, time_column, interval)
    except psycopg.Error as exc:
        raise StorageError(f"could not enable TimescaleDB hypertables: {exc}".strip()) from exc


def relation_size_mb(conn: psycopg.Connection, table: str) -> float:
    """Table + indexes (+ chunks of a hypertable), MiB."""
    schema = timescale_schema(conn)
    if schema is not None:
        query = sql.SQL(
            "select coalesce((select {}.hypertable_size(%s::regclass)"
            " where exists (select 1 from timescaledb_information.hypertables"
            " where hypertable_schema = current_schema() and hypertable_name = %s)),"
            " pg_total_relation_size(%s::regclass))"
        ).format(sql.Identifier(schema))
        row = conn.execute(query, (table, table, table)).fetchone()
    else:
        row = conn.execute("select pg_total_relation_size(%s::regclass)", (table,)).fetchone()
    return float(row[0] if row else 0) / 2**20


def server_versions(conn: psycopg.Connection) -> tuple[str, str | None]:
    """(PostgreSQL version, TimescaleDB extension version or None) of the connected server."""
    row = conn.execute(
        "select current_setting('server_version'),"
        " (select extversion from pg_extension where extname = 'timescaledb')"
    ).fetchone()
    assert row is not None
    return str(row[0]).split(" ")[0], None if row[1] is None else str(row[1])


def server_bin_dir(conn: psycopg.Connection) -> str | None:
    """The server's binary directory (pg_config BINDIR), or None when it is not visible."""
    row = conn.execute("select setting from pg_config where name = 'BINDIR'").fetchone()
    return None if row is None else str(row[0])

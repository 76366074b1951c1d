-- Closed TimescaleDB chunks of readings whose indexes were rebuilt packed (forewarn.storage.compaction),
-- with the chunk's index bytes before and after. Unused on plain PostgreSQL.
create table if not exists chunk_compactions (
    chunk text primary key,                 -- schema-qualified chunk name
    hypertable text not null,
    compacted_at timestamptz not null default now(),
    index_bytes_before bigint not null,
    index_bytes_after bigint not null
);

-- Minute and hour roll-ups of readings per machine and sensor, maintained by the application
-- (forewarn/storage/rollups.py: refresh_rollups). Plain PostgreSQL; on TimescaleDB the migrate step
-- turns both into hypertables, and with the community licence readings_1h is replaced by a
-- continuous aggregate over readings_1m with the same columns.
--
-- A row summarises the non-null numeric values of one sensor in [ts, ts + width):
-- n values, their total (avg = total / n), smallest and largest.

create table readings_1m (
    machine_id text not null,
    sensor text not null,
    ts timestamptz not null,
    n bigint not null,
    total double precision not null,
    min_value double precision not null,
    max_value double precision not null,
    primary key (machine_id, ts, sensor)
);
create index readings_1m_ts_idx on readings_1m (ts);

create table readings_1h (
    machine_id text not null,
    sensor text not null,
    ts timestamptz not null,
    n bigint not null,
    total double precision not null,
    min_value double precision not null,
    max_value double precision not null,
    primary key (machine_id, ts, sensor)
);
create index readings_1h_ts_idx on readings_1h (ts);

-- How far each roll-up is materialised: buckets before the watermark are in the table; queries
-- aggregate what lies after it from the level below (readings_1m, then raw readings).
create table rollup_watermarks (
    rollup text primary key check (rollup in ('minute', 'hour')),
    watermark timestamptz not null,
    refreshed_at timestamptz not null default now()
);

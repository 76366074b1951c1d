-- Scale-out of scoring and alerts: machines are split into partitions by a stable hash; each
-- partition is held by one worker through a lease that it renews and that expires when it dies.

create table if not exists worker_heartbeats (
    service text not null,              -- 'scoring' or 'alerts'
    worker text not null,
    seen_at timestamptz not null,
    primary key (service, worker)
);

create table if not exists partition_leases (
    service text not null,
    partition integer not null,
    worker text not null,
    expires_at timestamptz not null,
    primary key (service, partition)
);

-- The streaming scorer's state per partition (per-machine baselines and the last seq scored),
-- written in the same transaction as the predictions it led to. ``version`` grows by one on each
-- write, so a worker that finds another version than the one it wrote reloads before scoring.
create table if not exists stream_checkpoints (
    partition integer primary key,
    partitions integer not null,
    version bigint not null,
    state bytea not null,
    updated_at timestamptz not null default now()
);

-- One row per partition and pass that scored something: who scored which machines, how many
-- readings, how long it took. No unique key on purpose: a machine scored twice would show here.
create table if not exists score_passes (
    id bigserial primary key,
    service text not null,
    worker text not null,
    partition integer not null,
    started_at timestamptz not null,
    finished_at timestamptz not null default clock_timestamp(),
    machines text[] not null,
    first_seq bigint[] not null,
    last_seq bigint[] not null,
    readings integer not null
);
create index if not exists score_passes_finished_idx on score_passes (finished_at);

-- Streaming hysteresis per machine (the champion's lives in alert_state).
create table if not exists alert_stream_state (
    machine_id text primary key,
    consecutive_high integer not null default 0,
    active boolean not null default false,
    last_ts timestamptz not null,
    updated_at timestamptz not null default now()
);

-- Streaming predictions (one per reading that can change the alert policy's decision).
alter table predictions drop constraint if exists predictions_role_check;
alter table predictions add constraint predictions_role_check
    check (role in ('champion', 'challenger', 'online', 'stream'));

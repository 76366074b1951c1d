-- Core schema: asset registry, time series, dead letters, predictions, alerts, models, keys, audit.
-- Plain PostgreSQL; TimescaleDB hypertables are added after migrations when the extension exists.

create table sites (
    id text primary key,
    name text not null
);

create table lines (
    id text primary key,
    site_id text not null references sites (id),
    name text not null
);

create table machine_types (
    id text primary key,
    name text not null,
    sensors jsonb not null,                 -- [{"name","unit","min","max"}]
    failure_modes text[] not null default '{}',
    downtime_cost_per_h double precision not null default 0,
    repair_cost double precision not null default 0,
    planned_maintenance_cost double precision not null default 0,
    inspection_cost double precision not null default 0,
    repair_hours double precision not null default 8,
    planned_hours double precision not null default 2
);

create table machines (
    id text primary key,
    site_id text not null references sites (id),
    line_id text references lines (id),
    type_id text not null references machine_types (id),
    installed_at timestamptz not null default now(),
    auto_registered boolean not null default false
);
create index machines_site_idx on machines (site_id);

-- One row per telemetry message. The natural key (machine, seq, ts) makes a redelivery a no-op;
-- ts is part of it so that the table can become a TimescaleDB hypertable.
create table readings (
    machine_id text not null,
    seq bigint not null,
    ts timestamptz not null,
    regime integer,
    values jsonb not null,
    received_at timestamptz not null default now(),
    primary key (machine_id, seq, ts)
);
create index readings_ts_idx on readings (ts desc);
create index readings_machine_ts_idx on readings (machine_id, ts desc);

create table machine_events (
    machine_id text not null,
    seq bigint not null,
    ts timestamptz not null,
    event text not null check (event in ('failure', 'maintenance', 'state')),
    mode text,
    kind text,
    duration_s double precision,
    detail jsonb not null default '{}',
    received_at timestamptz not null default now(),
    primary key (machine_id, seq, ts)
);
create index machine_events_machine_ts_idx on machine_events (machine_id, ts desc);

create table dead_letters (
    id bigserial primary key,
    received_at timestamptz not null default now(),
    topic text not null,
    payload bytea not null,
    reason text not null,
    detail text not null default ''
);
create index dead_letters_reason_idx on dead_letters (reason);

create table model_versions (
    id bigserial primary key,
    name text not null,
    version integer not null,
    created_at timestamptz not null default now(),
    artifact bytea not null,
    artifact_sha256 text not null,
    features jsonb not null,
    feature_hash text not null,
    params jsonb not null default '{}',
    metrics jsonb not null default '{}',
    train_from timestamptz,
    train_to timestamptz,
    code_revision text,
    unique (name, version)
);

create table model_aliases (
    name text not null,
    alias text not null check (alias in ('champion', 'challenger')),
    version_id bigint not null references model_versions (id),
    updated_at timestamptz not null default now(),
    primary key (name, alias)
);

create table model_alias_history (
    id bigserial primary key,
    name text not null,
    alias text not null,
    version_id bigint references model_versions (id),
    previous_version_id bigint references model_versions (id),
    actor text not null,
    at timestamptz not null default now()
);

create table model_checkpoints (
    name text primary key,
    state bytea not null,
    position jsonb not null default '{}',
    updated_at timestamptz not null default now()
);

create table predictions (
    machine_id text not null,
    ts timestamptz not null,
    role text not null check (role in ('champion', 'challenger', 'online')),
    model_version_id bigint,
    failure_prob double precision,
    rul_h double precision,
    rul_low_h double precision,
    rul_high_h double precision,
    anomaly double precision,
    mode text,
    contributions jsonb,
    data_quality text not null default 'ok',
    created_at timestamptz not null default now(),
    primary key (machine_id, ts, role)
);
create index predictions_ts_idx on predictions (ts desc);

create table alerts (
    id bigserial primary key,
    machine_id text not null references machines (id),
    mode text not null,
    status text not null check (status in ('open', 'acknowledged', 'resolved', 'dismissed')),
    severity text not null check (severity in ('low', 'medium', 'high', 'critical')),
    failure_prob double precision,
    ttf_h double precision,
    ttf_low_h double precision,
    ttf_high_h double precision,
    contributions jsonb,
    model_version_id bigint references model_versions (id),
    inputs_age_s double precision,
    recommended_action text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    escalated_at timestamptz,
    version integer not null default 1,
    change_seq bigint not null default 0
);
create unique index alerts_one_open_idx on alerts (machine_id, mode)
    where status in ('open', 'acknowledged');
create index alerts_change_seq_idx on alerts (change_seq);

create table alert_transitions (
    id bigserial primary key,
    alert_id bigint not null references alerts (id),
    from_status text,
    to_status text not null,
    actor text not null,
    reason text not null default '',
    detail jsonb not null default '{}',
    at timestamptz not null default now()
);
create index alert_transitions_alert_idx on alert_transitions (alert_id);

create table api_keys (
    id bigserial primary key,
    name text not null unique,
    role text not null check (role in ('viewer', 'operator', 'maintenance', 'admin')),
    key_hash text not null unique,
    prefix text not null,
    created_at timestamptz not null default now(),
    revoked_at timestamptz
);

create table audit_log (
    id bigserial primary key,
    at timestamptz not null default now(),
    actor text not null,
    action text not null,
    target text not null default '',
    detail jsonb not null default '{}'
);

-- Alerts engine and API: change counter for gap-free polling, hysteresis state, thresholds,
-- idempotency keys, webhooks (outbox + attempt log).

-- One row. Every transaction that writes alerts locks it first (select ... for update) and then
-- takes change_seq values from it, so change_seq values become visible in commit order: a poller
-- that read everything up to N never later sees a new row with change_seq <= N.
create table alert_change_counter (
    id integer primary key check (id = 1),
    seq bigint not null
);
insert into alert_change_counter (id, seq) values (1, 0);

-- Hysteresis state per machine, so that a restarted runner continues where it stopped.
create table alert_state (
    machine_id text primary key,
    consecutive_high integer not null default 0,
    active boolean not null default false,
    last_ts timestamptz not null,
    updated_at timestamptz not null default now()
);

-- Per machine type thresholds; a missing row means the fixed thresholds from settings.
create table alert_thresholds (
    type_id text primary key references machine_types (id),
    high double precision not null check (high > 0),
    low double precision not null check (low >= 0),
    source text not null check (source in ('fixed', 'cost')),
    expected_savings double precision,
    samples integer,
    computed_at timestamptz not null default now(),
    check (low < high)
);

-- Replays of a state-changing request with the same Idempotency-Key return the stored response.
create table idempotency_keys (
    api_key_id bigint not null references api_keys (id),
    key text not null,
    request_hash text not null,
    status_code integer not null,
    response jsonb not null,
    created_at timestamptz not null default now(),
    primary key (api_key_id, key)
);

create table webhooks (
    id bigserial primary key,
    url text not null,
    secret text not null,
    events text[] not null default '{}',   -- empty = every event
    active boolean not null default true,
    created_by text not null,
    created_at timestamptz not null default now()
);

-- Outbox: a delivery is inserted in the same transaction as the alert change it reports.
create table webhook_deliveries (
    id bigserial primary key,
    webhook_id bigint not null references webhooks (id) on delete cascade,
    event text not null,
    alert_id bigint references alerts (id),
    payload jsonb not null,
    status text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
    attempts integer not null default 0,
    created_at timestamptz not null default now(),
    delivered_at timestamptz
);
create index webhook_deliveries_pending_idx on webhook_deliveries (id) where status = 'pending';

create table webhook_attempts (
    id bigserial primary key,
    delivery_id bigint not null references webhook_deliveries (id) on delete cascade,
    attempt integer not null,
    at timestamptz not null default now(),
    status_code integer,
    error text,
    duration_ms double precision not null
);
create index webhook_attempts_delivery_idx on webhook_attempts (delivery_id);

create index alerts_status_idx on alerts (status, created_at desc);
create index alerts_machine_idx on alerts (machine_id, created_at desc);
create index predictions_machine_role_ts_idx on predictions (machine_id, role, ts desc);

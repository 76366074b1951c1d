-- Asset onboarding (issue 16): the currency of a machine type's costs, and versions of machine
-- types (sensors with units and bounds, failure modes, costs) and of each machine's type, so that
-- a change keeps the meaning of the readings taken before it. Idempotent; touches nothing else.

alter table machine_types add column if not exists currency text;

create table if not exists machine_type_versions (
    type_id text not null references machine_types (id),
    version integer not null,
    valid_from timestamptz not null,
    name text not null,
    sensors jsonb not null,
    failure_modes text[] not null default '{}',
    costs jsonb not null default '{}',
    currency text,
    actor text not null,
    recorded_at timestamptz not null default now(),
    primary key (type_id, version)
);

create table if not exists machine_type_assignments (
    machine_id text not null references machines (id),
    valid_from timestamptz not null,
    type_id text not null references machine_types (id),
    actor text not null,
    recorded_at timestamptz not null default now(),
    primary key (machine_id, valid_from)
);

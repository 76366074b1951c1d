-- Sparkplug B metric catalogue: what each birth certificate declared (name, alias, data type,
-- unit) and which machine and sensor it is stored as. One row per metric of a node or device,
-- updated by every birth. Idempotent: safe to apply twice, independent of other ranges.
create table if not exists sparkplug_metrics (
    group_id text not null,
    edge_node text not null,
    device text not null default '',        -- '' for the node's own metrics
    name text not null,
    alias bigint,
    datatype text not null,
    unit text,
    machine_id text not null,
    sensor text,                            -- null: not stored (text, control, undeclared sensor)
    born_at timestamptz not null,
    updated_at timestamptz not null default now(),
    primary key (group_id, edge_node, device, name)
);
create index if not exists sparkplug_metrics_machine_idx on sparkplug_metrics (machine_id);

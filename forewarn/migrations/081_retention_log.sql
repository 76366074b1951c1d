-- What retention removed, per table and tick: a count of rows stored minus rows removed is how
-- many were ever stored (the demo's loss check counts readings that way).
create table if not exists retention_log (
    id bigserial primary key,
    at timestamptz not null default now(),
    table_name text not null,
    cutoff timestamptz not null,
    rows_removed bigint not null
);

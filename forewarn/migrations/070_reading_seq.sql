-- (machine, seq) identifies a reading (issue 18). The primary key stays (machine_id, seq, ts)
-- because a TimescaleDB hypertable needs its time column in every unique index; the ingest writer
-- enforces one reading per (machine, seq) under a per-machine lock, reading machine_seq.
-- Existing rows move to the new key without loss: of several readings sharing (machine, seq),
-- the first received stays, the others move to dead_letters as seq_conflict with their content.

alter table readings add column if not exists reordered boolean not null default false;

create table if not exists machine_seq (
    machine_id text primary key,
    max_seq bigint not null,
    updated_at timestamptz not null default now()
);

with ranked as (
    select machine_id, seq, ts,
           row_number() over (partition by machine_id, seq order by received_at, ts) as rn
    from readings
), moved as (
    delete from readings r using ranked k
    where k.rn > 1 and r.machine_id = k.machine_id and r.seq = k.seq and r.ts = k.ts
    returning r.machine_id, r.seq, r.ts, r.regime, r.values
)
insert into dead_letters (topic, payload, reason, detail)
select 'forewarn/v1/' || coalesce(m.site_id, '?') || '/' || v.machine_id || '/telemetry',
       convert_to(json_build_object('schema', 1, 'machine', v.machine_id, 'ts', v.ts,
                                    'seq', v.seq, 'values', v.values, 'regime', v.regime)::text,
                  'UTF8'),
       'seq_conflict',
       'moved by migration 070: (machine, seq) was already stored with another ts'
from moved v left join machines m on m.id = v.machine_id;

insert into machine_seq (machine_id, max_seq)
select machine_id, max(seq) from readings group by machine_id
on conflict (machine_id) do update set max_seq = greatest(machine_seq.max_seq, excluded.max_seq);

-- Statuses say who ended an alert: `cleared` by the engine (the risk went away or the machine was
-- maintained), `failed` (the predicted failure happened while the alert was open), besides a
-- person's `resolved` / `dismissed`. Idempotent: the check is replaced, old engine clearances
-- (recorded as `dismissed` by the system actor) are relabelled once.
alter table alerts drop constraint if exists alerts_status_check;
alter table alerts add constraint alerts_status_check
    check (status in ('open', 'acknowledged', 'resolved', 'dismissed', 'cleared', 'failed'));

update alerts a set status = 'cleared'
where a.status = 'dismissed'
  and exists (select 1 from alert_transitions t where t.alert_id = a.id
              and t.to_status = 'dismissed' and t.actor = 'system');
update alert_transitions set to_status = 'cleared'
where to_status = 'dismissed' and actor = 'system';

-- Plant events by machine and kind, newest first: the alert engine asks "did this machine fail,
-- stop or get maintained since this prediction?" every pass.
create index if not exists machine_events_plant_idx on machine_events (machine_id, event, ts desc)
    where seq > 0;

-- New champion predictions wake the alert runner (LISTEN forewarn_champion), which then reads
-- them; it no longer probes every machine's predictions on every pass. NOTIFY is sent at commit,
-- and the notifications of one transaction collapse into one.
create or replace function forewarn_notify_champion() returns trigger
language plpgsql as $$
begin
    perform pg_notify('forewarn_champion', '');
    return null;
end
$$;

drop trigger if exists predictions_champion_notify on predictions;
create trigger predictions_champion_notify after insert on predictions
    for each row when (new.role = 'champion') execute function forewarn_notify_champion();

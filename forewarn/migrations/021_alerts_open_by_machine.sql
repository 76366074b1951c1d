-- Open-alert counts per machine (machine list, fleet views) without visiting closed alerts.
create index alerts_open_machine_idx on alerts (machine_id) where status in ('open', 'acknowledged');

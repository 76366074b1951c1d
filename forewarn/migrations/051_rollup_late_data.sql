-- Late readings of any age reach the roll-ups: each refresh finds the readings received since the
-- previous one ('received' watermark, on the database clock) whose ts lies before its window.
-- BRIN: received_at grows with the insertion order, so the index is tiny and nearly free to keep.
create index readings_received_at_brin on readings using brin (received_at);

alter table rollup_watermarks drop constraint rollup_watermarks_rollup_check;
alter table rollup_watermarks
    add constraint rollup_watermarks_rollup_check check (rollup in ('minute', 'hour', 'received'));

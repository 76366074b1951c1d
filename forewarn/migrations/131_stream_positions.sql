-- The streaming checkpoint in two parts: positions (last seq scored per machine, written every
-- pass with the predictions) and baselines (the larger per-machine state, written every few
-- seconds), so the write volume per pass stays small at fleet scale.
alter table stream_checkpoints add column if not exists positions bytea;

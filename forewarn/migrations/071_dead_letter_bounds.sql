-- Bounded dead letters (issue 18): the payload column keeps at most an excerpt (64 KiB by
-- default, FOREWARN_INGEST__DEAD_LETTER_EXCERPT_BYTES), with the whole message's size and sha256;
-- (null size/sha256: a row written without them, whose payload is whole); replayed_at marks the ones `forewarn deadletters replay` re-ingested; pruned by received_at.

alter table dead_letters add column if not exists size_bytes integer;
alter table dead_letters add column if not exists sha256 text;
alter table dead_letters add column if not exists replayed_at timestamptz;

update dead_letters
set size_bytes = length(payload), sha256 = encode(sha256(payload), 'hex')
where size_bytes is null;

update dead_letters set payload = substring(payload from 1 for 65536)
where length(payload) > 65536;

create index if not exists dead_letters_received_at_idx on dead_letters (received_at);

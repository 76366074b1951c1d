-- ROI backtests: each run of `forewarn backtest` stores its result, the compact per-life summary
-- (so a what-if with other costs needs no replay), the costs it used and the chosen threshold.
create table roi_backtests (
    id bigserial primary key,
    created_at timestamptz not null default now(),
    source text not null check (source in ('database', 'simulation')),
    window_from timestamptz not null,
    window_to timestamptz not null,
    params jsonb not null default '{}',      -- backtest config, prediction role, seed, machines...
    costs jsonb not null default '{}',       -- machine type -> costs used
    threshold double precision,              -- best alert threshold; null = never alerting is best
    result jsonb not null,                   -- the `forewarn backtest --json` object
    summary jsonb not null                   -- models.roi.LifeSummary.to_dict()
);
create index roi_backtests_created_idx on roi_backtests (created_at desc);

-- Versioned alert policies (issue 15): one policy object per machine type, stored as immutable
-- versions; one row says which version the alert engine uses; every alert records the version
-- that raised it and the time of the prediction that raised it. Idempotent.
create table if not exists alert_policies (
    version bigserial primary key,
    created_at timestamptz not null default now(),
    source text not null,                    -- 'backtest', 'thresholds', 'manual'
    policy jsonb not null,                   -- models.policy.PolicySet.to_dict()
    figures jsonb not null default '{}',     -- backtested figures (in-sample, out-of-sample, CIs)
    backtest_id bigint,                      -- roi_backtests.id when a backtest proposed it
    note text
);

-- One row: the live version. Promotions are recorded in alert_policy_history and audit_log.
create table if not exists alert_policy_live (
    id integer primary key check (id = 1),
    version bigint not null references alert_policies (version),
    promoted_at timestamptz not null default now(),
    promoted_by text not null
);

create table if not exists alert_policy_history (
    id bigserial primary key,
    at timestamptz not null default now(),
    actor text not null,
    version bigint not null references alert_policies (version),
    previous_version bigint references alert_policies (version)
);

alter table alerts add column if not exists policy_version bigint;
alter table alerts add column if not exists raised_by_ts timestamptz;
alter table alert_state add column if not exists quiet_until timestamptz;

-- Operator experience (issue 20): personal accounts, alert assignment and comments, notification
-- channels, routing rules, mute windows, and the notification outbox with its attempt log.
-- Idempotent (if not exists) and independent of other migration ranges.

-- People log in to the dashboard with these (API keys stay for machines). Passwords: argon2id.
create table if not exists users (
    id bigserial primary key,
    name text not null,
    email text not null,
    role text not null check (role in ('viewer', 'operator', 'maintenance', 'admin')),
    password_hash text not null,
    active boolean not null default true,
    created_by text not null,
    created_at timestamptz not null default now(),
    last_login_at timestamptz
);
create unique index if not exists users_email_idx on users (lower(email));

alter table alerts add column if not exists assignee_id bigint references users (id);

create table if not exists alert_comments (
    id bigserial primary key,
    alert_id bigint not null references alerts (id),
    author text not null,
    body text not null check (length(body) between 1 and 4000),
    at timestamptz not null
);
create index if not exists alert_comments_alert_idx on alert_comments (alert_id, id);

-- Where a notification goes: an e-mail address, a Teams Workflows or Slack incoming-webhook URL,
-- or a signed webhook. A person's e-mail channel names the user (assignment notifies them).
create table if not exists notification_channels (
    id bigserial primary key,
    name text not null unique,
    kind text not null check (kind in ('email', 'teams', 'slack', 'webhook')),
    target text not null,
    secret text,
    user_id bigint references users (id),
    digest_hour integer check (digest_hour between 0 and 23),  -- daily digest at this plant hour
    active boolean not null default true,
    created_by text not null,
    created_at timestamptz not null default now()
);

-- Routing: an alert event matching every non-null filter goes to the rule's channel. Reminders repeat
-- every remind_every_s while the alert is open (unacknowledged); escalation goes to a second channel
-- once an alert is still open escalate_after_s after it was raised. Times are on the plant clock.
create table if not exists notification_rules (
    id bigserial primary key,
    name text not null unique,
    channel_id bigint not null references notification_channels (id),
    site_id text,
    line_id text,
    type_id text,
    min_severity text check (min_severity in ('low', 'medium', 'high', 'critical')),
    mode text,
    events text[] not null default '{alert.raised}',
    remind_every_s integer check (remind_every_s > 0),
    escalate_after_s integer check (escalate_after_s > 0),
    escalate_channel_id bigint references notification_channels (id),
    active boolean not null default true,
    created_by text not null,
    created_at timestamptz not null default now(),
    check ((escalate_after_s is null) = (escalate_channel_id is null))
);

-- Maintenance windows and mute schedules: notifications (never alerts) for the machine, line or site
-- are recorded as muted while plant time is inside [starts_at, ends_at).
create table if not exists mute_windows (
    id bigserial primary key,
    scope text not null check (scope in ('machine', 'line', 'site')),
    scope_id text not null,
    starts_at timestamptz not null,
    ends_at timestamptz not null,
    reason text not null default '',
    created_by text not null,
    created_at timestamptz not null default now(),
    check (ends_at > starts_at)
);
create index if not exists mute_windows_scope_idx on mute_windows (scope, scope_id, ends_at);

-- Outbox: written in the transaction of the alert change (or the timer) that causes it.
create table if not exists notifications (
    id bigserial primary key,
    channel_id bigint not null references notification_channels (id),
    rule_id bigint references notification_rules (id),
    alert_id bigint references alerts (id),
    kind text not null check (kind in ('event', 'reminder', 'escalation', 'assignment', 'comment', 'digest')),
    event text not null,
    subject text not null,
    payload jsonb not null,
    status text not null default 'pending'
        check (status in ('pending', 'delivered', 'failed', 'muted')),
    attempts integer not null default 0,
    created_at timestamptz not null,          -- plant time of the cause (reminders count from it)
    delivered_at timestamptz,
    dedupe_key text unique                    -- e.g. one digest per channel and day
);
create index if not exists notifications_pending_idx on notifications (id) where status = 'pending';
create index if not exists notifications_alert_idx on notifications (alert_id, rule_id, kind);

create table if not exists notification_attempts (
    id bigserial primary key,
    notification_id bigint not null references notifications (id) on delete cascade,
    attempt integer not null,
    at timestamptz not null default now(),
    ok boolean not null,
    status_code integer,
    error text,
    duration_ms double precision not null
);
create index if not exists notification_attempts_idx on notification_attempts (notification_id);

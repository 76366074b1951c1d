"""Admin: personal accounts, notification channels, routing rules, mute windows and the delivery log."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pandas as pd
import streamlit as st

from dashboard import auth, data, people, tables
from forewarn.errors import Conflict, NotFound

ROLES = ("viewer", "operator", "maintenance", "admin")
KINDS = {
    "email": "E-mail",
    "teams": "Microsoft Teams",
    "slack": "Slack",
    "webhook": "Signed webhook",
}
SEVERITIES = ("any", "low", "medium", "high", "critical")
ANY = "any"


def _flash() -> None:
    flash = st.session_state.pop("admin_flash", None)
    if flash:
        (st.success if flash[0] == "success" else st.error)(flash[1])


def _done(message: str) -> None:
    st.session_state["admin_flash"] = ("success", message)
    st.rerun()


def _table(df: pd.DataFrame, columns: list[str], key: str) -> None:
    if df.empty:
        st.caption("Nothing yet.")
        return
    tables.show(df, columns, key=key)


def _opt(v: str) -> str | None:
    return None if v == ANY else v


def users_tab(url: str, user: auth.User) -> None:
    with st.form("new_user", clear_on_submit=True):
        st.markdown("**New account**")
        c1, c2, c3 = st.columns(3)
        name = c1.text_input("Name")
        email = c2.text_input("E-mail")
        role = c3.selectbox("Role", ROLES, index=1)
        password = st.text_input("Initial password (at least 10 characters)", type="password")
        if st.form_submit_button("Create account"):
            try:
                people.create_user(url, actor=user.name, name=name, email=email, role=role,
                                   password=password)  # fmt: skip
            except (ValueError, Conflict) as exc:
                st.error(str(exc))
            else:
                _done(f"Account for {name} created.")
    _table(people.users(url), ["name", "email", "role", "active", "last_login_at", "created_by"],
           "admin_users")  # fmt: skip


def channels_tab(url: str, user: auth.User) -> None:
    accounts = people.users(url)
    owners = {0: "nobody"} | (
        {} if accounts.empty else dict(zip(accounts["id"], accounts["name"], strict=True))
    )
    with st.form("new_channel", clear_on_submit=True):
        st.markdown("**New channel**")
        c1, c2 = st.columns([1, 1])
        name = c1.text_input("Channel name")
        kind = c2.selectbox("Kind", list(KINDS), format_func=KINDS.__getitem__)
        target = st.text_input("E-mail address or webhook URL")
        c3, c4 = st.columns(2)
        owner = c3.selectbox("Person (assignments and comments reach them here)", list(owners),
                             format_func=owners.__getitem__)  # fmt: skip
        digest = c4.selectbox("Daily digest at (plant time, UTC)", [None, *range(24)],
                              format_func=lambda h: "no digest" if h is None else f"{h:02d}:00")  # fmt: skip
        if st.form_submit_button("Add channel"):
            try:
                if not name.strip():
                    raise ValueError("a channel needs a name")
                people.create_channel(url, actor=user.name, name=name, kind=kind, target=target.strip(),
                                      user_id=owner or None, digest_hour=digest)  # fmt: skip
            except (ValueError, Conflict, NotFound) as exc:
                st.error(str(exc))
            else:
                _done(f"Channel {name} added.")
    _table(people.channels(url), ["id", "name", "kind", "target", "digest_hour", "active"],
           "admin_channels")  # fmt: skip


def rules_tab(url: str, user: auth.User) -> None:
    chans = people.channels(url)
    if chans.empty:
        st.info("Add a channel first.")
        return
    names = dict(zip(chans["id"], chans["name"], strict=True))
    choices = people.scope_choices(url)
    with st.form("new_rule", clear_on_submit=True):
        st.markdown("**New routing rule**: alerts matching every filter go to the channel")
        c1, c2 = st.columns(2)
        name = c1.text_input("Rule name")
        channel = c2.selectbox("Send to", list(names), format_func=names.__getitem__)
        c3, c4, c5 = st.columns(3)
        site = c3.selectbox("Site", [ANY, *choices["site"]])
        line = c4.selectbox("Line", [ANY, *choices["line"]])
        mtype = c5.selectbox("Machine type", [ANY, *choices["type"]])
        c6, c7 = st.columns(2)
        severity = c6.selectbox("Minimum severity", SEVERITIES)
        mode = c7.text_input("Failure mode (empty = any)")
        c8, c9, c10 = st.columns(3)
        remind = c8.number_input("Remind every (min, 0 = never) until acknowledged", 0, 10080, 0)
        escalate = c9.number_input("Escalate after (min, 0 = never)", 0, 43200, 0)
        second = c10.selectbox("Escalate to", [0, *names], format_func=lambda i: names.get(i, "—"))
        if st.form_submit_button("Add rule"):
            filters = {
                "site_id": _opt(site), "line_id": _opt(line), "type_id": _opt(mtype),
                "min_severity": _opt(severity), "mode": mode.strip() or None,
                "remind_every_s": int(remind) * 60 or None,
                "escalate_after_s": int(escalate) * 60 or None,
                "escalate_channel_id": second or None,
            }  # fmt: skip
            try:
                if not name.strip():
                    raise ValueError("a rule needs a name")
                if (filters["escalate_after_s"] is None) != (
                    filters["escalate_channel_id"] is None
                ):
                    raise ValueError("escalation needs both a delay and a second channel")
                people.create_rule(
                    url, name=name, channel_id=int(channel), actor=user.name, **filters
                )
            except (ValueError, Conflict, NotFound) as exc:
                st.error(str(exc))
            else:
                _done(f"Rule {name} added.")
    cols = ["id", "name", "channel_id", "site_id", "line_id", "type_id", "min_severity", "mode",
            "remind_every_s", "escalate_after_s", "active"]  # fmt: skip
    _table(people.rules(url), cols, "admin_rules")


def mutes_tab(url: str, user: auth.User) -> None:
    choices = people.scope_choices(url)
    now = people.plant_now(url)
    with st.form("new_mute", clear_on_submit=True):
        st.markdown("**New maintenance window**: notifications (not alerts) are muted inside it")
        c1, c2 = st.columns(2)
        scope = c1.selectbox("Scope", ["machine", "line", "site"])
        every = sorted({x for k in ("machine", "line", "site") for x in choices[k]})
        scope_id = c2.selectbox("Machine, line or site", every)
        c3, c4, c5 = st.columns(3)
        day = c3.date_input("Starts on (plant time, UTC)", now.date())
        start = c4.time_input("at", time(now.hour, 0))
        hours = c5.number_input("Lasts (hours)", 1, 24 * 14, 8)
        reason = st.text_input("Reason", "planned maintenance")
        if st.form_submit_button("Add mute window"):
            starts = datetime.combine(day, start, tzinfo=now.tzinfo)
            try:
                people.create_mute(url, actor=user.name, scope=scope, scope_id=scope_id,
                                   starts_at=starts, ends_at=starts + timedelta(hours=int(hours)),
                                   reason=reason)  # fmt: skip
            except (ValueError, NotFound) as exc:
                st.error(str(exc))
            else:
                _done(f"Notifications for {scope} {scope_id} muted.")
    _table(people.mutes(url), ["id", "scope", "scope_id", "starts_at", "ends_at", "reason"],
           "admin_mutes")  # fmt: skip


def log_tab(url: str) -> None:
    log = people.delivery_log(url)
    if log.empty:
        st.caption("No notifications yet.")
        return
    cols = ["id", "created_at", "channel", "channel_kind", "kind", "subject", "status", "attempts",
            "delivered_at", "last_error"]  # fmt: skip
    tables.show(log, cols, key="admin_log")


user = auth.require_user()
st.header("Admin")
if user.role != "admin":
    st.error("Only admins manage accounts and notifications.")
    st.stop()
url = data.db_url()
_flash()
tabs = st.tabs(["Accounts", "Channels", "Rules", "Mute windows", "Delivery log"], key="admin_tab",
               on_change="rerun")  # fmt: skip
with tabs[0]:
    users_tab(url, user)
with tabs[1]:
    channels_tab(url, user)
with tabs[2]:
    rules_tab(url, user)
with tabs[3]:
    mutes_tab(url, user)
with tabs[4]:
    log_tab(url)

"""Dashboard access to people and notifications: accounts, assignment, comments, channels, rules,
mute windows and the delivery log. Thin wrappers over the storage functions the API uses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from dashboard import data
from forewarn.clock import now_on
from forewarn.settings import load_settings
from forewarn.storage import notifications as notes
from forewarn.storage import people


def authenticate(url: str, email: str, password: str) -> people.Person | None:
    """The active person with this e-mail and password (records the login), or None."""
    with data._pool(url).connection() as conn:
        return people.authenticate(conn, email, password, now=now_on(conn, load_settings().clock))


def person(url: str, user_id: int) -> people.Person | None:
    """The account if it is still active (a deactivated one logs its sessions out)."""
    with data._pool(url).connection() as conn:
        return people.get_user(conn, user_id)


def login_by_email(url: str, email: str) -> people.Person | None:
    """The active account with this e-mail, its login recorded (OpenID Connect logins)."""
    with data._pool(url).connection() as conn:
        found = people.get_user_by_email(conn, email)
        if found is not None:
            people.record_login(conn, found.id, now=now_on(conn, load_settings().clock))
        return found


def alert_people(url: str, alert_id: int) -> dict[str, Any]:
    with data._pool(url).connection() as conn:
        return people.alert_people(conn, alert_id)


def assign(url: str, alert_id: int, user_id: int | None, *, actor: str) -> dict[str, Any]:
    """Assign through the same storage function as the API (audited, notifies the person)."""
    with data._pool(url).connection() as conn:
        out = people.assign_alert(
            conn, alert_id, user_id, actor=actor, now=now_on(conn, load_settings().clock)
        )
    data.alerts.clear()
    return out


def comment(url: str, alert_id: int, body: str, *, actor: str) -> dict[str, Any]:
    with data._pool(url).connection() as conn:
        return people.comment_alert(
            conn, alert_id, body, actor=actor, now=now_on(conn, load_settings().clock)
        )


def users(url: str) -> pd.DataFrame:
    with data._pool(url).connection() as conn:
        return pd.DataFrame(people.list_users(conn))


def create_user(url: str, *, actor: str, **fields: str) -> dict[str, Any]:
    with data._pool(url).connection() as conn:
        return people.create_user(conn, actor=actor, **fields)  # type: ignore[arg-type]


def channels(url: str) -> pd.DataFrame:
    with data._pool(url).connection() as conn:
        return pd.DataFrame(notes.list_channels(conn))


def create_channel(url: str, *, actor: str, **fields: Any) -> dict[str, Any]:
    with data._pool(url).connection() as conn:
        return notes.create_channel(conn, actor=actor, **fields)


def rules(url: str) -> pd.DataFrame:
    with data._pool(url).connection() as conn:
        return pd.DataFrame(notes.list_rules(conn))


def create_rule(
    url: str, *, name: str, channel_id: int, actor: str, **filters: Any
) -> dict[str, Any]:
    with data._pool(url).connection() as conn:
        return notes.create_rule(conn, name=name, channel_id=channel_id, actor=actor, **filters)


def mutes(url: str) -> pd.DataFrame:
    with data._pool(url).connection() as conn:
        return pd.DataFrame(notes.list_mutes(conn))


def create_mute(url: str, *, actor: str, **fields: Any) -> dict[str, Any]:
    with data._pool(url).connection() as conn:
        return notes.create_mute(conn, actor=actor, **fields)


def delivery_log(url: str, limit: int = 200) -> pd.DataFrame:
    with data._pool(url).connection() as conn:
        rows = notes.delivery_log(conn, limit=limit)
    for r in rows:
        last = r["log"][-1] if r["log"] else {}
        r["last_error"] = last.get("error") or ""
    return pd.DataFrame(rows)


def scope_choices(url: str) -> dict[str, list[str]]:
    """Sites, lines, machines and machine types for the rule and mute-window forms."""
    df = data.fleet_health(url)
    return {
        "site": sorted(df["site_id"].dropna().unique()),
        "line": sorted(df["line_id"].dropna().unique()),
        "machine": sorted(df["machine_id"].dropna().unique()),
        "type": sorted(df["type_id"].dropna().unique()),
    }


def plant_now(url: str) -> datetime:
    return data.plant_now(url)

"""Log in with an API key; what each role may do on the dashboard.

The key is checked with the API's own lookup (``forewarn.storage.keys``). The permissions mirror
the API's access matrix (``api.auth``: ACT for acknowledge and resolve, DISMISS for dismiss); the
dashboard may not import the API package, so the two sets are repeated here and a unit test keeps
them in step with the API's routes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import streamlit as st

# Same sets as api.auth.ACT and api.auth.DISMISS.
PERMISSIONS: dict[str, frozenset[str]] = {
    "acknowledge": frozenset({"operator", "maintenance", "admin"}),
    "resolve": frozenset({"operator", "maintenance", "admin"}),
    "dismiss": frozenset({"operator", "admin"}),
}
SESSION_KEY = "user"
CHECKED_KEY = "user_checked_at"
REVOKED_MESSAGE = "Your API key was revoked; log in again."
KEY_RECHECK_S = 60.0  # a revoked key or a changed role takes effect within this time


@dataclass(frozen=True)
class User:
    name: str
    role: str
    prefix: str
    # kept server-side in the session to re-check the key (revocation); never sent to the browser
    key: str = field(default="", repr=False)


def can(role: str | None, action: str) -> bool:
    """Whether ``role`` may perform ``action`` ('acknowledge', 'resolve', 'dismiss')."""
    return role is not None and role in PERMISSIONS.get(action, frozenset())


def current_user() -> User | None:
    """The logged-in user of this browser session, or None."""
    user = st.session_state.get(SESSION_KEY)
    return user if isinstance(user, User) else None


def require_user() -> User:
    """The logged-in user; stops the page when there is none.

    app.py never runs a page before login; pages check again because a page can also be run
    directly (Streamlit's AppTest does) and a key revoked mid-session logs the session out.
    """
    user = current_user()
    if user is None:
        st.stop()
    assert user is not None
    return user


def verified_user(url: str, *, force: bool = False) -> User | None:
    """The session's user, its key re-checked at most every KEY_RECHECK_S (always when ``force``).

    A key revoked since login logs the session out; a changed role applies from now on.
    """
    from dashboard import data

    user = current_user()
    if user is None:
        return None
    now = time.monotonic()
    if not force and now - st.session_state.get(CHECKED_KEY, 0.0) < KEY_RECHECK_S:
        return user
    found = data.verify_key(url, user.key)
    if found is None:
        logout()
        st.session_state["login_flash"] = REVOKED_MESSAGE
        return None
    user = User(found.name, found.role, found.prefix, user.key)
    st.session_state[SESSION_KEY] = user
    st.session_state[CHECKED_KEY] = now
    return user


def login_form(url: str) -> None:
    """Show the login form; a valid key stores the user in the session and reruns the app."""
    from dashboard import data

    st.title("Forewarn")
    st.caption("Predictive maintenance dashboard")
    flash = st.session_state.pop("login_flash", None)
    if flash:
        st.warning(flash)
    with st.form("login"):
        key = st.text_input("API key", type="password", placeholder="fwk_...")
        submitted = st.form_submit_button("Log in")
    if submitted:
        found = data.verify_key(url, key) if key.strip() else None
        if found is None:
            st.error("Invalid or revoked API key.")
            return
        st.session_state[SESSION_KEY] = User(found.name, found.role, found.prefix, key.strip())
        st.session_state[CHECKED_KEY] = time.monotonic()
        st.rerun()


def logout() -> None:
    st.session_state.pop(SESSION_KEY, None)
    st.session_state.pop(CHECKED_KEY, None)

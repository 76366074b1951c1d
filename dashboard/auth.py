"""Log in with an API key; what each role may do on the dashboard.

The key is checked with the API's own lookup (``forewarn.storage.keys``). The permissions mirror
the API's access matrix (``api.auth``: ACT for acknowledge and resolve, DISMISS for dismiss); the
dashboard may not import the API package, so the two sets are repeated here and a unit test keeps
them in step with the API's routes.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

# Same sets as api.auth.ACT and api.auth.DISMISS.
PERMISSIONS: dict[str, frozenset[str]] = {
    "acknowledge": frozenset({"operator", "maintenance", "admin"}),
    "resolve": frozenset({"operator", "maintenance", "admin"}),
    "dismiss": frozenset({"operator", "admin"}),
}
SESSION_KEY = "user"


@dataclass(frozen=True)
class User:
    name: str
    role: str
    prefix: str


def can(role: str | None, action: str) -> bool:
    """Whether ``role`` may perform ``action`` ('acknowledge', 'resolve', 'dismiss')."""
    return role is not None and role in PERMISSIONS.get(action, frozenset())


def current_user() -> User | None:
    """The logged-in user of this browser session, or None."""
    user = st.session_state.get(SESSION_KEY)
    return user if isinstance(user, User) else None


def login_form(url: str) -> None:
    """Show the login form; a valid key stores the user in the session and reruns the app."""
    from dashboard import data

    st.title("Forewarn")
    st.caption("Predictive maintenance dashboard")
    with st.form("login"):
        key = st.text_input("API key", type="password", placeholder="fwk_...")
        submitted = st.form_submit_button("Log in")
    if submitted:
        found = data.verify_key(url, key) if key.strip() else None
        if found is None:
            st.error("Invalid or revoked API key.")
            return
        st.session_state[SESSION_KEY] = User(found.name, found.role, found.prefix)
        st.rerun()


def logout() -> None:
    st.session_state.pop(SESSION_KEY, None)

"""Log in as a person (e-mail and password) or with an API key; what each role may do.

People log in with their accounts (``forewarn.storage.people``: argon2id hashes), so the audit trail
names them; an API key still works for shared screens. The key is checked with the API's own lookup (``forewarn.storage.keys``). The permissions mirror
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
REVOKED_MESSAGE = "Your access was revoked; log in again."
KEY_RECHECK_S = 60.0  # a revoked key or a changed role takes effect within this time


@dataclass(frozen=True)
class User:
    name: str
    role: str
    prefix: str
    # kept server-side in the session to re-check the key (revocation); never sent to the browser
    key: str = field(default="", repr=False)
    person_id: int | None = None  # a personal account (None: logged in with an API key)
    email: str = ""


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
    from dashboard import data, people

    user = current_user()
    if user is None:
        return None
    now = time.monotonic()
    if not force and now - st.session_state.get(CHECKED_KEY, 0.0) < KEY_RECHECK_S:
        return user
    if user.person_id is not None:
        p = people.person(url, user.person_id)
        if p is None:
            logout()
            st.session_state["login_flash"] = REVOKED_MESSAGE
            return None
        user = User(p.name, p.role, "", person_id=p.id, email=p.email)
        st.session_state[SESSION_KEY] = user
        st.session_state[CHECKED_KEY] = now
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
    """Show the login forms; a valid account (or key) stores the user in the session and reruns."""
    from dashboard import data, people

    st.title("Forewarn")
    st.caption("Predictive maintenance dashboard")
    flash = st.session_state.pop("login_flash", None)
    if flash:
        st.warning(flash)
    with st.form("login"):
        email = st.text_input("E-mail", placeholder="you@plant.example", key="login_email")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in", type="primary", key="login_submit")
    if submitted:
        found = people.authenticate(url, email, password) if email.strip() and password else None
        if found is None:
            st.error("Wrong e-mail or password.")
        else:
            user = User(found.name, found.role, "", person_id=found.id, email=found.email)
            st.session_state[SESSION_KEY] = user
            st.session_state[CHECKED_KEY] = time.monotonic()
            st.rerun()
    with st.expander("Log in with an API key (shared screens, machines)"):
        with st.form("login_with_key"):
            key = st.text_input("API key", type="password", placeholder="fwk_...", key="login_key")
            with_key = st.form_submit_button("Log in with key", key="login_key_submit")
        if with_key:
            found_key = data.verify_key(url, key) if key.strip() else None
            if found_key is None:
                st.error("Invalid or revoked API key.")
                return
            st.session_state[SESSION_KEY] = User(
                found_key.name, found_key.role, found_key.prefix, key.strip()
            )
            st.session_state[CHECKED_KEY] = time.monotonic()
            st.rerun()
    if oidc_configured():
        refused = oidc_identity()
        if refused:
            # the provider vouched for this e-mail but no active Forewarn account has it
            st.error(
                f"{refused} has no Forewarn account: ask an admin to create one with this e-mail."
            )
            st.button("Log out of the identity provider", on_click=st.logout, key="oidc_logout")
        else:
            st.button("Log in with your identity provider", on_click=st.login, key="oidc_login")
    st.caption(
        "Accounts are created by an admin (dashboard Admin page, `forewarn users create`, or "
        "`POST /v1/users`). Plants with an identity provider can use OpenID Connect instead: "
        "see the README (Streamlit `st.login`)."
    )


def oidc_configured() -> bool:
    """Whether ``.streamlit/secrets.toml`` has an ``[auth]`` section (OpenID Connect via st.login)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all: Streamlit raises instead of answering False
        return False


def oidc_identity() -> str:
    """The e-mail the identity provider vouched for in this browser (st.user), or ''."""
    if not oidc_configured() or not getattr(st.user, "is_logged_in", False):
        return ""
    return str(st.user.get("email") or "")


def oidc_user(url: str) -> User | None:
    """The account whose e-mail the identity provider vouched for (st.user), or None.

    The provider proves who the person is; the role still comes from their Forewarn account, which
    an admin creates (an identity without an account gets no access). The login is recorded.
    """
    from dashboard import people

    email = oidc_identity()
    found = people.login_by_email(url, email) if email else None
    if found is None:
        return None
    return User(found.name, found.role, "", person_id=found.id, email=found.email)


def logout() -> None:
    st.session_state.pop(SESSION_KEY, None)
    st.session_state.pop(CHECKED_KEY, None)

"""Forewarn dashboard: `streamlit run dashboard/app.py` (normally through `forewarn dashboard`).

Entry script of a Streamlit multipage app: login (account, API key or OpenID Connect), then ``st.navigation`` over the
page modules in ``dashboard/pages``. Reads settings only when a session runs, never at import.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import auth, data

PAGES = (
    ("pages/fleet.py", "Fleet", ":material/factory:"),
    ("pages/machine.py", "Machine", ":material/precision_manufacturing:"),
    ("pages/alerts.py", "Alerts", ":material/notifications:"),
    ("pages/roi.py", "Downtime & ROI", ":material/savings:"),
    ("pages/models.py", "Models", ":material/model_training:"),
)

FAVICON = Path(__file__).parent / "assets" / "favicon.png"
ADMIN_PAGE = ("pages/admin.py", "Admin", ":material/admin_panel_settings:")


def main() -> None:
    # a file, not a ":material/..." icon: Streamlit fetches those favicons from fonts.gstatic.com
    st.set_page_config(page_title="Forewarn", page_icon=str(FAVICON), layout="wide")
    url = data.db_url()
    user = auth.verified_user(url)
    if user is None and (oidc := auth.oidc_user(url)) is not None:
        st.session_state[auth.SESSION_KEY] = user = oidc
    if user is None:
        # st.navigation runs on every rerun (Streamlit never falls back to listing pages/); until
        # a key is verified its only page is the login form
        login = st.Page(lambda: auth.login_form(url), title="Log in", url_path="login")
        st.navigation([login], position="hidden").run()
        return
    shown = PAGES + (ADMIN_PAGE,) if user.role == "admin" else PAGES
    pages = [
        st.Page(path, title=title, icon=icon, default=(i == 0))
        for i, (path, title, icon) in enumerate(shown)
    ]
    nav = st.navigation(pages)
    banner = data.ingest_banner(url)
    if banner is not None:
        st.warning(banner, icon=":material/warning:")
    with st.sidebar:
        st.markdown(f"**{user.name}** · `{user.role}`")
        if st.button("Log out", key="logout"):
            auth.logout()
            if auth.oidc_configured() and getattr(st.user, "is_logged_in", False):
                st.logout()
            st.rerun()
    nav.run()


main()

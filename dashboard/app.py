"""Forewarn dashboard: `streamlit run dashboard/app.py` (normally through `forewarn dashboard`).

Entry script of a Streamlit multipage app: login with an API key, then ``st.navigation`` over the
page modules in ``dashboard/pages``. Reads settings only when a session runs, never at import.
"""

from __future__ import annotations

import streamlit as st

from dashboard import auth, data

PAGES = (
    ("pages/fleet.py", "Fleet", ":material/factory:"),
    ("pages/machine.py", "Machine", ":material/precision_manufacturing:"),
    ("pages/alerts.py", "Alerts", ":material/notifications:"),
    ("pages/roi.py", "Downtime & ROI", ":material/savings:"),
    ("pages/models.py", "Models", ":material/model_training:"),
)


def main() -> None:
    st.set_page_config(page_title="Forewarn", page_icon=":material/sensors:", layout="wide")
    url = data.db_url()
    user = auth.verified_user(url)
    if user is None:
        # st.navigation runs on every rerun (Streamlit never falls back to listing pages/); until
        # a key is verified its only page is the login form
        login = st.Page(lambda: auth.login_form(url), title="Log in", url_path="login")
        st.navigation([login], position="hidden").run()
        return
    pages = [
        st.Page(path, title=title, icon=icon, default=(i == 0))
        for i, (path, title, icon) in enumerate(PAGES)
    ]
    nav = st.navigation(pages)
    with st.sidebar:
        st.markdown(f"**{user.name}** · `{user.role}`")
        if st.button("Log out", key="logout"):
            auth.logout()
            st.rerun()
    nav.run()


main()

"""Alerts: open and recent alerts; operators acknowledge, resolve (with the maintenance done) or dismiss."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import auth, charts, data, figures, people, tables
from forewarn.errors import Conflict, NotFound
from models.calibration import fmt_prob

LIVE_REFRESH_S = 15
STATUS_LABELS = {
    "open": "Open",
    "acknowledged": "Acknowledged",
    "resolved": "Resolved (person)",
    "dismissed": "Dismissed (person)",
    "cleared": "Cleared (engine)",
    "failed": "Failed",
}
RECENT_DAYS = 7.0
MAINTENANCE_ACTIONS = ("inspection", "preventive", "repair")  # the API's MaintenanceAction
TABLE_COLUMNS = [  # the recommended action early and wide: it is what people act on
    "id", "machine_id", "severity", "status", "recommended_action", "failure_prob", "ttf_h", "mode",
    "created_at", "updated_at",
]  # fmt: skip


def _num(v: object, spec: str = ".0f") -> str:
    return "–" if v is None or pd.isna(v) else format(float(v), spec)  # type: ignore[arg-type]


def _table(df: pd.DataFrame, key: str) -> None:
    if df.empty:
        st.caption("No alerts.")
        return
    tables.show(df, TABLE_COLUMNS, key=key)


@st.fragment(run_every=LIVE_REFRESH_S)
def live(url: str) -> None:
    window = st.session_state.get(data.SHARED_WINDOW_KEY, data.DEFAULT_WINDOW)
    since, _ = data.window(data.SHARED_WINDOWS[window], data.plant_now(url))
    a = data.alerts(url, since)
    counts = a["counts"]
    cols = st.columns(len(STATUS_LABELS))
    for col, (status, status_label) in zip(cols, STATUS_LABELS.items(), strict=True):
        col.metric(status_label, counts.get(status, 0))
    st.subheader("Open and acknowledged")
    _table(a["active"], "alerts_active")
    st.subheader(f"Closed in the last {window}")
    st.caption(
        "Who ended each alert: **resolved** and **dismissed** by a person (the maintenance done, "
        "or a false alarm); **cleared** by the engine (the risk went away or the machine was "
        "maintained); **failed**: the predicted failure happened while the alert was open."
    )
    _table(a["closed"], "alerts_closed")


ACTION_OF_STATUS = {"acknowledged": "acknowledge", "resolved": "resolve", "dismissed": "dismiss"}


def _act(url: str, alert: pd.Series, to_status: str, **kw: str) -> None:
    user = auth.verified_user(url, force=True)  # a state change always uses the key's current role
    if user is None:  # revoked since login: the session is logged out, the next rerun asks again
        st.warning(auth.REVOKED_MESSAGE)
        st.stop()
    assert user is not None
    if not auth.can(user.role, ACTION_OF_STATUS[to_status]):
        st.session_state["alert_flash"] = ("error", f"Your role ({user.role}) may not do this.")
        st.rerun()
    try:
        data.change_alert(
            url,
            int(alert["id"]),
            to_status,
            actor=user.name,
            expected_version=int(alert["version"]),
            **kw,  # type: ignore[arg-type]
        )
    except (Conflict, NotFound) as exc:
        st.session_state["alert_flash"] = ("error", str(exc))
    else:
        st.session_state["alert_flash"] = ("success", f"Alert #{alert['id']} is now {to_status}.")
    st.rerun()


def _people(url: str, alert_id: int) -> None:
    info = people.alert_people(url, alert_id)
    who = info["assignee"]
    st.markdown(f"**Assigned to:** {who['name'] if who else 'nobody'}")
    for c in info["comments"]:
        st.markdown(f"> {c['body']}\n\n— *{c['author']}*, {c['at']:%Y-%m-%d %H:%M} UTC")


def _assign_form(url: str, alert_id: int, user: auth.User) -> None:
    accounts = people.users(url)
    active = accounts[accounts["active"]] if not accounts.empty else accounts
    names = {0: "nobody"} | (
        {} if active.empty else dict(zip(active["id"], active["name"], strict=True))
    )
    pick = st.selectbox("Assign to", list(names), format_func=names.__getitem__, key="asg_user")
    if st.button("Assign", key="asg_button"):
        try:
            people.assign(url, alert_id, int(pick) or None, actor=user.name)
        except (Conflict, NotFound) as exc:
            st.session_state["alert_flash"] = ("error", str(exc))
        else:
            st.session_state["alert_flash"] = (
                "success",
                f"Alert #{alert_id} assigned to {names[pick]}.",
            )
        st.rerun()


def _comment_form(url: str, alert_id: int, user: auth.User) -> None:
    with st.form("comment_form", clear_on_submit=True):
        body = st.text_area("Comment", key="com_body", height=80)
        if st.form_submit_button("Add comment"):
            try:
                people.comment(url, alert_id, body, actor=user.name)
            except (ValueError, NotFound) as exc:
                st.session_state["alert_flash"] = ("error", str(exc))
            else:
                st.session_state["alert_flash"] = (
                    "success",
                    f"Comment added to alert #{alert_id}.",
                )
            st.rerun()


def actions(url: str, user: auth.User) -> None:
    since, _ = data.window(RECENT_DAYS, data.plant_now(url))
    active = data.alerts(url, since)["active"]
    st.subheader("Act on an alert")
    flash = st.session_state.pop("alert_flash", None)
    if flash:
        (st.success if flash[0] == "success" else st.error)(flash[1])
    if active.empty:
        st.caption("No open alerts.")
        return
    # unacknowledged first ("open" sorts after "acknowledged"), newest first within each
    ordered = active.sort_values(["status", "id"], ascending=[False, False])
    labels = {
        int(r.id): f"#{r.id} · {r.machine_id} · {r.mode} · {r.severity}"
        for r in ordered.itertuples()
    }
    chosen = st.selectbox("Alert", list(labels), format_func=labels.__getitem__, key="alert_pick")
    alert = active[active["id"] == chosen].iloc[0]
    left, right = st.columns([1, 1])  # the five action tabs fit without scrolling
    with left:
        st.markdown(f"**Status:** {alert['status']} · **severity:** {alert['severity']}")
        st.markdown(f"**Recommended:** {alert['recommended_action'] or '–'}")
        st.markdown(
            f"P(failure) **{fmt_prob(alert['failure_prob'])}**, time to failure "
            f"**{_num(alert['ttf_h'])} h** ({_num(alert['ttf_low_h'])}–{_num(alert['ttf_high_h'])} h)"
        )
        if not auth.can(user.role, "acknowledge"):
            st.info(f"Your role ({user.role}) can read alerts but not act on them.")
        else:
            # keyed, state-tracking tabs: choosing the maintenance done (a rerun) keeps Resolve open
            ack, res, dis, asg, com = st.tabs(
                ["Acknowledge", "Resolve", "Dismiss", "Assign", "Comment"],
                key="alert_tab",
                on_change="rerun",
            )
            with ack:
                reason = st.text_input("Note (optional)", key="ack_reason")
                if st.button(
                    "Acknowledge",
                    key="ack_button",
                    disabled=alert["status"] != "open",
                    type="primary",
                ):
                    _act(url, alert, "acknowledged", reason=reason)
            with res:
                action = st.selectbox("Maintenance done", MAINTENANCE_ACTIONS, key="res_action")
                note = st.text_input("Note", key="res_note")
                if st.button("Resolve", key="res_button"):
                    _act(
                        url,
                        alert,
                        "resolved",
                        reason=note or action,
                        action=action,
                        note=note,
                    )
            with dis:
                if not auth.can(user.role, "dismiss"):
                    st.info(f"Your role ({user.role}) cannot dismiss alerts.")
                else:
                    why = st.text_input("Why is this a false alarm?", key="dis_reason")
                    if st.button("Dismiss", key="dis_button", disabled=not why.strip()):
                        _act(url, alert, "dismissed", reason=why.strip())
            with asg:
                _assign_form(url, int(alert["id"]), user)
            with com:
                _comment_form(url, int(alert["id"]), user)
        _people(url, int(alert["id"]))
    right.plotly_chart(
        charts.figure(
            figures.fig_contributions,
            alert["contributions"],
            units=data.machine_units(url, str(alert["machine_id"])),
        ),
        key="alert_contributions",
    )


user = auth.require_user()
st.header("Alerts")
url = data.db_url()
data.window_picker(st, "alerts_window")
actions(url, user)
live(url)

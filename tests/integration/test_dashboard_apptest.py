"""Every dashboard page under Streamlit's AppTest, against a seeded database on real PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from forewarn.money import fmt_money
from forewarn.storage.alerts import NewAlert, insert_alert
from forewarn.storage.keys import create_key, revoke_key
from tests.fixtures.dashboard import SeededPlant, seeded_plant  # noqa: F401  (fixture)

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
TIMEOUT_S = 60


@pytest.fixture
def app_env(seeded_plant: SeededPlant, monkeypatch: pytest.MonkeyPatch) -> SeededPlant:  # noqa: F811
    monkeypatch.setenv("FOREWARN_DB__URL", seeded_plant.url)
    return seeded_plant


def _logged_in(key: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    assert not at.exception, at.exception
    at.text_input(key="login_key").input(key)
    at.button(key="login_key_submit").click().run()
    assert not at.exception, at.exception
    return at


def _texts(at: AppTest) -> str:
    parts = (
        [m.value for m in at.markdown]
        + [h.value for h in at.header]
        + [h.value for h in at.subheader]
    )
    return "\n".join(str(p) for p in parts)


def test_a_bad_key_is_refused(app_env: SeededPlant) -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    at.text_input(key="login_key").input("fwk_not-a-key")
    at.button(key="login_key_submit").click().run()
    assert [e.value for e in at.error] == ["Invalid or revoked API key."]
    assert not at.header  # no page is shown


def test_fleet_page(app_env: SeededPlant) -> None:
    at = _logged_in(app_env.operator_key)
    assert [h.value for h in at.header] == ["Fleet health"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Machines"] == str(app_env.counts["machines"])
    with psycopg.connect(app_env.url) as conn:
        open_alerts = conn.execute(
            "select count(*) from alerts where status in ('open', 'acknowledged')"
        ).fetchone()
    assert open_alerts is not None and metrics["Open alerts"] == str(open_alerts[0])
    table = at.dataframe[0].value
    assert len(table) == app_env.counts["machines"]
    assert table["P(failure)"].is_monotonic_decreasing  # riskiest first
    # filtering by type keeps only that type
    at.multiselect(key="fleet_types").select("pump").run()
    assert set(at.dataframe[0].value["type"]) == {"pump"}


def test_machine_page_opened_from_the_fleet(app_env: SeededPlant) -> None:
    at = _logged_in(app_env.operator_key)
    second = at.selectbox(key="fleet_pick").options[1]
    at.selectbox(key="fleet_pick").set_value(second)
    at.button(key="fleet_open").click().run()
    assert not at.exception, at.exception
    assert [h.value for h in at.header] == ["Machine detail"]
    assert at.selectbox(key="machine_pick").value == second
    labels = {m.label for m in at.metric}
    assert {"P(failure)", "RUL (h)", "Open alerts", "Predicted mode"} <= labels
    at.segmented_control(key="machine_window").set_value("24 hours").run()  # minute roll-ups
    assert not at.exception, at.exception


def test_alerts_page_operator_acknowledges(app_env: SeededPlant) -> None:
    at = _logged_in(app_env.operator_key)
    at.switch_page("pages/alerts.py").run()
    assert not at.exception, at.exception
    alert_id = at.selectbox(key="alert_pick").value
    with psycopg.connect(app_env.url) as conn:
        row = conn.execute("select status from alerts where id = %s", (alert_id,)).fetchone()
    assert row == ("open",)  # unacknowledged alerts are offered first
    at.text_input(key="ack_reason").input("on it")
    at.button(key="ack_button").click().run()
    assert not at.exception, at.exception
    assert f"Alert #{alert_id} is now acknowledged." in [s.value for s in at.success]
    with psycopg.connect(app_env.url) as conn:
        status = conn.execute("select status from alerts where id = %s", (alert_id,)).fetchone()
        trans = conn.execute(
            "select from_status, to_status, actor, reason from alert_transitions"
            " where alert_id = %s order by id desc limit 1",
            (alert_id,),
        ).fetchone()
    assert status == ("acknowledged",)
    assert trans == ("open", "acknowledged", "op-ui", "on it")


def _new_alert(
    url: str, machine_id: str, mode: str, contributions: dict[str, float] | None = None
) -> int:
    with psycopg.connect(url) as conn:
        alert = insert_alert(
            conn,
            NewAlert(
                machine_id,
                mode,
                "high",
                0.8,
                20.0,
                10.0,
                30.0,
                contributions or {"torque_mean_1h": 0.4},
                None,
                12.0,
                "Inspect the spindle drive",
            ),  # fmt: skip
            actor="test",
            now=datetime.now(UTC),
        )
        conn.commit()
    st.cache_data.clear()  # pages cache alerts for LIVE_TTL_S; show the new one now
    return int(alert["id"])


def _open_alerts_page(app_env: SeededPlant, alert_id: int) -> AppTest:
    at = _logged_in(app_env.operator_key)
    at.switch_page("pages/alerts.py").run()
    at.selectbox(key="alert_pick").set_value(alert_id).run()
    assert not at.exception, at.exception
    return at


def test_alerts_page_operator_resolves_with_the_maintenance_done(app_env: SeededPlant) -> None:
    alert_id = _new_alert(app_env.url, "s2-pump-0011", "ui-resolve")
    at = _open_alerts_page(app_env, alert_id)
    at.selectbox(key="res_action").set_value("repair")
    at.text_input(key="res_note").input("drive replaced")
    at.button(key="res_button").click().run()
    assert f"Alert #{alert_id} is now resolved." in [s.value for s in at.success]
    with psycopg.connect(app_env.url) as conn:
        status = conn.execute("select status from alerts where id = %s", (alert_id,)).fetchone()
        event = conn.execute(
            "select event, kind, detail->>'note' from machine_events where seq = %s",
            (-alert_id,),
        ).fetchone()
    assert status == ("resolved",)
    assert event == ("maintenance", "repair", "drive replaced")


def test_alerts_page_explains_with_human_feature_names_and_units(app_env: SeededPlant) -> None:
    alert_id = _new_alert(app_env.url, "s2-pump-0011", "ui-explain",
                          {"bearing_temp__max_6": 0.5, "flow__slope_24": -0.2})  # fmt: skip
    at = _open_alerts_page(app_env, alert_id)
    (chart,) = [c for c in at.get("plotly_chart") if "contributions" in c.proto.spec]
    labels = json.loads(chart.proto.spec)["data"][0]["y"]
    assert set(labels) == {
        "Bearing temperature — max over 6 h (°C)",
        "Flow — trend over 24 h (m³/h per h)",
    }


def test_alerts_page_operator_dismisses_with_a_reason(app_env: SeededPlant) -> None:
    alert_id = _new_alert(app_env.url, "s2-pump-0011", "ui-dismiss")
    at = _open_alerts_page(app_env, alert_id)
    assert at.button(key="dis_button").disabled  # a reason is required
    at.text_input(key="dis_reason").input("sensor glitch, checked on site").run()
    at.button(key="dis_button").click().run()
    with psycopg.connect(app_env.url) as conn:
        row = conn.execute(
            "select a.status, t.reason from alerts a join alert_transitions t on t.alert_id = a.id"
            " where a.id = %s and t.to_status = 'dismissed'",
            (alert_id,),
        ).fetchone()
    assert row == ("dismissed", "sensor glitch, checked on site")


def test_alerts_page_viewer_cannot_act(app_env: SeededPlant) -> None:
    at = _logged_in(app_env.viewer_key)
    at.switch_page("pages/alerts.py").run()
    assert not at.exception, at.exception
    assert any("can read alerts but not act" in i.value for i in at.info)
    assert not [b for b in at.button if b.key in ("ack_button", "res_button", "dis_button")]


def test_downtime_roi_page(app_env: SeededPlant) -> None:
    at = _logged_in(app_env.operator_key)
    at.switch_page("pages/roi.py").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    with psycopg.connect(app_env.url) as conn:
        failures = conn.execute(
            "select count(*) from machine_events where event = 'failure'"
        ).fetchone()
        stored = conn.execute(
            "select (result->>'savings_vs_run_to_failure')::float8 from roi_backtests"
        ).fetchone()
    assert failures is not None and metrics["Failures"] == str(failures[0])
    assert stored is not None
    assert metrics["Saved vs run-to-failure (in sample)"] == fmt_money(stored[0], "EUR")
    assert metrics["Net savings"].startswith(("EUR", "−EUR"))  # every money figure has its currency
    # what-if: failures twice as expensive make prediction worth more than the stored backtest says
    repair = at.number_input(key="whatif_repair_cost")
    repair.set_value(repair.value * 2)
    at.button[-1].click().run()  # the form's "Recompute"
    assert not at.exception, at.exception
    saved = [m.value for m in at.metric if m.label == "Saved vs run-to-failure (in sample)"]
    assert len(saved) == 2  # stored, then recomputed

    def amount(v: str) -> float:
        return float(v.replace("EUR", "").replace(",", "").replace("−", "-").replace(" ", ""))

    assert amount(saved[1]) > amount(saved[0])


def test_models_page(app_env: SeededPlant) -> None:
    at = _logged_in(app_env.operator_key)
    at.switch_page("pages/models.py").run()
    assert not at.exception, at.exception
    texts = _texts(at)
    assert "Champion, challenger and online model" in texts
    # the seed: CNC has a champion and a challenger, pumps a champion only; both an online model
    markdown = texts
    assert "**Champion** · pm-cnc v1" in markdown and "**Challenger** · pm-cnc v2" in markdown
    assert "**Champion** · pm-pump v1" in markdown and "**Online** · online-pump" in markdown
    assert any(i.value.startswith("No challenger yet") for i in at.info)
    versions = at.dataframe[0].value
    assert sorted(versions["version"]) == [1, 1, 2]
    assert not any(word in texts for word in ("None", " nan", "NaT"))


def test_every_page_renders_on_an_empty_database(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(db_url) as conn:
        key = create_key(conn, "empty-viewer", "viewer")
        conn.commit()
    monkeypatch.setenv("FOREWARN_DB__URL", db_url)
    at = _logged_in(key)
    for page in (
        "pages/fleet.py",
        "pages/machine.py",
        "pages/alerts.py",
        "pages/roi.py",
        "pages/models.py",
    ):
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        assert at.header, page


def test_a_key_revoked_after_login_cannot_act(app_env: SeededPlant) -> None:
    with psycopg.connect(app_env.url) as conn:
        key = create_key(conn, "op-soon-revoked", "operator")
        conn.commit()
    alert_id = _new_alert(app_env.url, "s2-pump-0011", "ui-revoked")
    at = _logged_in(key)
    at.switch_page("pages/alerts.py").run()
    at.selectbox(key="alert_pick").set_value(alert_id).run()
    with psycopg.connect(app_env.url) as conn:
        assert revoke_key(conn, "op-soon-revoked", now=datetime.now(UTC))
        conn.commit()
    at.button(key="ack_button").click().run()
    assert not at.exception, at.exception
    assert [w.value for w in at.warning] == ["Your access was revoked; log in again."]
    with psycopg.connect(app_env.url) as conn:
        status = conn.execute("select status from alerts where id = %s", (alert_id,)).fetchone()
    assert status == ("open",)

"""The dashboard's one data-access module: page loaders over the shared query layer, cached.

``load_*`` functions are plain: a connection in, DataFrames out (the benchmark times these). The
cached functions below them take the database URL as their first argument so that two databases
never share a cache entry, borrow a connection from one pool per URL (``st.cache_resource``) and
keep results for a short TTL (``st.cache_data``). SQL lives in ``forewarn.storage``, never here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st
from psycopg import Connection
from psycopg_pool import ConnectionPool

from dashboard.lineup import ROLES
from forewarn.actions import STATUS_OF_VERB
from forewarn.errors import ConfigError
from forewarn.money import DEFAULT_CURRENCY
from forewarn.settings import load_settings
from forewarn.storage import alerts as alert_store
from forewarn.storage import assets as asset_store
from forewarn.storage import fleet, keys, machines, model_registry, policies, roi, rollups
from forewarn.storage.db import open_pool
from forewarn.storage.rollups import BUCKETS, Bucket
from models.calibration import BINS, report_from_sums
from models.roi import reprice

LIVE_TTL_S = 15  # fleet health, alerts: a new prediction shows within this time
SLOW_TTL_S = 120  # downtime, models: change slowly
ACTIVE = ("open", "acknowledged")
CLOSED = ("resolved", "dismissed", "cleared", "failed")

ALERT_COLUMNS = [
    "id", "machine_id", "mode", "status", "severity", "failure_prob", "ttf_h", "ttf_low_h",
    "ttf_high_h", "contributions", "recommended_action", "created_at", "updated_at",
    "escalated_at", "version",
]  # fmt: skip
FLEET_COLUMNS = [
    "machine_id", "site_id", "site_name", "line_id", "type_id", "type_name", "predicted_at",
    "failure_prob", "rul_h", "rul_low_h", "rul_high_h", "anomaly", "predicted_mode",
    "data_quality", "open_alerts", "top_severity", "last_reading_at",
]  # fmt: skip


def _frame(rows: list[dict[str, Any]], columns: list[str] | None = None) -> pd.DataFrame:
    return pd.DataFrame.from_records(rows, columns=columns) if columns else pd.DataFrame(rows)


def window(days: float, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[since, until) ending at the next whole minute, so cache keys stay stable within a minute."""
    now = now or datetime.now(UTC)
    until = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return until - timedelta(days=days), until


def bucket_for(since: datetime, until: datetime) -> Bucket:
    """The roll-up level for a window: hours beyond a day, minutes within one."""
    return "hour" if until - since > timedelta(days=1) else "minute"


# --- plain loaders: one per page --------------------------------------------------------------


def load_fleet(conn: Connection) -> pd.DataFrame:
    """Fleet page: one row per machine with its latest risk and open alerts."""
    return _frame(fleet.fleet_health(conn), FLEET_COLUMNS)


@dataclass(frozen=True)
class MachineData:
    info: dict[str, Any] | None
    rollup: pd.DataFrame
    predictions: pd.DataFrame
    timeline: pd.DataFrame
    latest: dict[str, Any] | None
    alerts: pd.DataFrame


def load_machine(
    conn: Connection, machine_id: str, since: datetime, until: datetime
) -> MachineData:
    """Machine page: sensor roll-ups, prediction bands, events and alerts of one machine."""
    bucket = bucket_for(since, until)
    rollup = rollups.sensor_rollup(conn, machine_id, since, until, bucket)
    return MachineData(
        info=fleet.machine_info(conn, machine_id),
        rollup=pd.DataFrame(
            [(r.bucket, r.sensor, r.avg, r.min, r.max, r.count) for r in rollup],
            columns=["bucket", "sensor", "mean", "min", "max", "n"],
        ),
        predictions=_frame(
            fleet.prediction_history(
                conn, machine_id, since=since, until=until, bucket=BUCKETS[bucket]
            ),
            [
                "bucket",
                "failure_prob",
                "failure_prob_max",
                "rul_h",
                "rul_low_h",
                "rul_high_h",
                "anomaly",
                "n",
            ],
        ),
        timeline=_frame(
            fleet.machine_timeline(conn, machine_id, since=since, until=until),
            ["ts", "kind", "label", "status", "duration_h"],
        ),
        latest=fleet.latest_prediction(conn, machine_id),
        alerts=_frame(
            alert_store.list_alerts(conn, machine_id=machine_id, limit=50), ALERT_COLUMNS
        ),
    )


def load_alerts(conn: Connection, since: datetime) -> dict[str, Any]:
    """Alerts page: active alerts, alerts closed since ``since`` and counts per status."""
    return {
        "active": _frame(alert_store.list_alerts(conn, status=ACTIVE, limit=500), ALERT_COLUMNS),
        "closed": _frame(
            alert_store.list_alerts(conn, status=CLOSED, since=since, limit=200), ALERT_COLUMNS
        ),
        "counts": fleet.alert_counts(conn),
    }


def load_downtime(conn: Connection, since: datetime, until: datetime) -> dict[str, Any]:
    """Downtime & ROI page: downtime by machine and cause, per day, and the ROI summary."""
    return {
        "by_machine": _frame(
            fleet.downtime_by_machine(conn, since=since, until=until),
            [
                "machine_id",
                "site_id",
                "type_id",
                "event",
                "cause",
                "events",
                "downtime_h",
                "downtime_cost",
            ],
        ),
        "daily": _frame(
            fleet.daily_events(conn, since=since, until=until),
            ["day", "event", "events", "downtime_h"],
        ),
        "summary": machines.roi_summary(conn, since=since, until=until),
        "ledger": roi.ledger(conn, since=since, until=until),
        "backtest": roi.latest_backtest(conn),
        "policy": policies.live_policy(conn),
        "currency": roi.plant_currency(conn) or factory_currency(),
    }


def backtest_progress() -> dict[str, Any] | None:
    """The demo's background backtest progress ({done, total, stage}), or None when none runs."""
    import json

    path = load_settings().state_dir / "run" / "backtest.progress.json"
    try:
        got = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return got if isinstance(got, dict) and {"done", "total", "stage"} <= set(got) else None


def factory_currency() -> str:
    """The currency of the factory configuration (``FOREWARN_FACTORY``; default EUR)."""
    from forewarn.factory import load_factory

    try:
        return load_factory(load_settings().factory).currency
    except ConfigError:  # a broken factory file must not take the ROI page down
        return DEFAULT_CURRENCY


def load_models(conn: Connection, since: datetime, until: datetime) -> dict[str, Any]:
    """Models page: versions with metrics and aliases, online models, promotions, predictions per
    role, drift (plant time), and live calibration per role (champion, challenger, online)."""
    bucket = BUCKETS["hour"] if until - since <= timedelta(days=14) else BUCKETS["day"]
    return {
        "versions": _frame(model_registry.list_versions(conn)),
        "online": _frame(model_registry.list_checkpoints(conn), ["name", "position", "updated_at"]),
        "history": _frame(fleet.alias_history(conn)),
        "roles": _frame(
            fleet.role_comparison(conn, since=since, until=until, bucket=bucket),
            ["bucket", "role", "failure_prob", "rul_h", "n"],
        ),
        "drift": _frame(
            fleet.drift_events(conn, since=since), ["at", "actor", "action", "target", "detail"]
        ),
        "calibration": {role: live_calibration(conn, role) for role in ROLES},
        "types": load_types(conn),
        "retrain_every_h": load_settings().models.retrain_every_h,
    }


def load_types(conn: Connection) -> dict[str, dict[str, Any]]:
    """Machine type id -> {"name", "units": {sensor: unit}} (units only where one is set), for
    human feature names with units."""
    return {
        t["id"]: {
            "name": t["name"],
            "units": {x["name"]: x["unit"] for x in t["sensors"] if x.get("unit")},
        }
        for t in asset_store.machine_type_list(conn)
    }


def live_calibration(conn: Connection, role: str = "champion") -> dict[str, Any]:
    """Calibration of a role's live predictions on labelled outcomes (as `models show`)."""
    horizon = load_settings().models.horizon_h
    # summed per type and bin in the database: ten rows a type, not every labelled prediction
    sums = alert_store.calibration_sums(conn, horizon_h=horizon, bins=BINS, role=role)
    return report_from_sums(sums, horizon_h=horizon, bins=BINS)


# --- cached access for the Streamlit pages -----------------------------------------------------


SHARED_WINDOWS = {"24 hours": 1.0, "3 days": 3.0, "7 days": 7.0, "30 days": 30.0, "90 days": 90.0}
SHARED_WINDOW_KEY = "shared_window"
DEFAULT_WINDOW = "7 days"


def window_picker(container: Any, key: str) -> tuple[str, float]:
    """One time window shared by every page: each page's control starts from the window last chosen
    on any page and sets it for the others. Returns (label, days)."""
    shared = st.session_state.get(SHARED_WINDOW_KEY, DEFAULT_WINDOW)
    if st.session_state.get(key) not in SHARED_WINDOWS:  # new on this page (or cleared): follow
        st.session_state[key] = shared

    def _share() -> None:
        if st.session_state.get(key) in SHARED_WINDOWS:
            st.session_state[SHARED_WINDOW_KEY] = st.session_state[key]

    label = (
        container.segmented_control(
            "Window (all pages)", list(SHARED_WINDOWS), key=key, on_change=_share
        )
        or shared
    )
    st.session_state[SHARED_WINDOW_KEY] = label
    return label, SHARED_WINDOWS[label]


def db_url() -> str:
    """The database URL the dashboard process was started with (``forewarn dashboard`` sets it)."""
    settings = load_settings()
    if settings.db.url is None:
        raise ConfigError(
            "FOREWARN_DB__URL", "unset: start the dashboard with `forewarn dashboard`"
        )
    return settings.db.url.get_secret_value()


@st.cache_resource(show_spinner=False)
def _pool(url: str) -> ConnectionPool:
    return open_pool(url, load_settings(), name="dashboard")


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def plant_now(url: str) -> datetime:
    """The plant's clock (its newest reading, never ahead of the wall clock): windows end here, so
    a replayed or accelerated plant shows its own last week, not the wall clock's."""
    from forewarn.clock import now_on

    with _pool(url).connection() as conn:
        return now_on(conn, load_settings().clock)


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def machine_orders(url: str, machine_id: str) -> list[dict[str, Any]]:
    with _pool(url).connection() as conn:
        return fleet.machine_orders(conn, machine_id)


def order_line(o: dict[str, Any]) -> str:
    """One maintenance order and the plant's answer, in words (pure, unit-tested)."""

    def t(v: datetime | None) -> str:
        return "–" if v is None else f"{v:%Y-%m-%d %H:%M}"

    line = f"Alert #{o['alert_id']}: {o['action']} ordered by {o['actor']} at {t(o['ordered_at'])}"
    if o["done_at"] is not None:
        return line + f" · repair arrived: {o['done_kind']} done by the plant at {t(o['done_at'])}"
    if o["started_at"] is not None:
        return line + f" · work started at {t(o['started_at'])}"
    return line + " · waiting for the plant"


PULSE_WINDOW_S = 120.0  # wall seconds: no reading received in this long = data stopped
DEAD_LETTER_SPIKE_SHARE = 0.05  # of the messages received in the window
DEAD_LETTER_SPIKE_MIN = 20


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def ingest_banner(url: str) -> str | None:
    """A warning for every page when data stopped arriving or dead letters spike (else None)."""
    with _pool(url).connection() as conn:
        p = fleet.ingest_pulse(conn, window_s=PULSE_WINDOW_S)
    return pulse_warning(p, PULSE_WINDOW_S)


def pulse_warning(p: dict[str, Any], window_s: float) -> str | None:
    """The banner text for an ingest pulse (pure, unit-tested)."""
    received = p["stored"] + p["dead_lettered"]
    if p["dead_lettered"] >= DEAD_LETTER_SPIKE_MIN and p["dead_lettered"] > (
        DEAD_LETTER_SPIKE_SHARE * received
    ):
        return (
            f"{p['dead_lettered']:,} of {received:,} messages received in the last "
            f"{window_s:.0f} s were dead-lettered: the dead_letters table holds each one's "
            "reason."
        )
    if p["any_data"] and p["stored"] == 0:
        return (
            f"No data has arrived for {window_s:.0f} s: is ingest running and the plant sending? "
            "Figures below are as of the last reading."
        )
    return None


@st.cache_data(ttl=SLOW_TTL_S, show_spinner=False)
def types(url: str) -> dict[str, dict[str, Any]]:
    with _pool(url).connection() as conn:
        return load_types(conn)


def machine_units(url: str, machine_id: str) -> dict[str, str]:
    """The units of a machine's sensors ({} for a machine the fleet does not list)."""
    fleet_df = fleet_health(url)
    row = fleet_df[fleet_df["machine_id"] == machine_id] if not fleet_df.empty else fleet_df
    type_id = None if row.empty else row["type_id"].iloc[0]
    return dict((types(url).get(str(type_id)) or {}).get("units") or {})


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def fleet_health(url: str) -> pd.DataFrame:
    with _pool(url).connection() as conn:
        return load_fleet(conn)


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def machine_detail(url: str, machine_id: str, since: datetime, until: datetime) -> MachineData:
    with _pool(url).connection() as conn:
        return load_machine(conn, machine_id, since, until)


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def alerts(url: str, since: datetime) -> dict[str, Any]:
    with _pool(url).connection() as conn:
        return load_alerts(conn, since)


@st.cache_data(ttl=SLOW_TTL_S, show_spinner=False)
def downtime(url: str, since: datetime, until: datetime) -> dict[str, Any]:
    with _pool(url).connection() as conn:
        return load_downtime(conn, since, until)


@st.cache_data(ttl=SLOW_TTL_S, show_spinner=False)
def models(url: str, since: datetime, until: datetime) -> dict[str, Any]:
    with _pool(url).connection() as conn:
        return load_models(conn, since, until)


@st.cache_data(ttl=SLOW_TTL_S, show_spinner=False)
def what_if(url: str, backtest_id: int, overrides: tuple[tuple[str, str, float], ...]) -> Any:
    """The stored backtest re-evaluated with other costs: (machine type, cost field, value) triples."""
    nested: dict[str, dict[str, float]] = {}
    for type_id, field, value in overrides:
        nested.setdefault(type_id, {})[field] = value
    with _pool(url).connection() as conn:
        return reprice(roi.backtest_summary(conn, backtest_id=backtest_id), nested)


def verify_key(url: str, key: str) -> keys.ApiKey | None:
    """The active API key matching ``key`` (the API's own lookup), or None. Never cached."""
    with _pool(url).connection() as conn:
        return keys.lookup_key(conn, key.strip())


@st.cache_resource(show_spinner=False)
def _order_publisher() -> Any:
    """The dashboard's MQTT publisher of maintenance orders (None without a broker URL)."""
    from forewarn.orders import mqtt_publisher

    settings = load_settings()
    if settings.mqtt.url is None:
        return None
    publish, _close = mqtt_publisher(settings, name="dashboard-orders")
    return publish


def change_alert(
    url: str,
    alert_id: int,
    to_status: str,
    *,
    actor: str,
    reason: str,
    expected_version: int | None,
    action: str | None = None,
    note: str = "",
) -> dict[str, Any]:
    """Acknowledge, resolve (recording the maintenance done) or dismiss one alert.

    The one alert action (:func:`forewarn.actions.act_on_alert`) the API and CLI use: one
    transaction at plant time, then a resolve's maintenance order goes to the plant. Cached alert,
    fleet and machine data are dropped so every page shows the new state.
    """
    from forewarn.actions import AlertAction, act_on_alert

    verb = {v: k for k, v in STATUS_OF_VERB.items()}[to_status]
    settings = load_settings()
    act = AlertAction(
        verb,  # type: ignore[arg-type]
        actor,
        reason=reason,
        maintenance=action,
        note=note,
        expected_version=expected_version,
        via="dashboard",
    )
    with _pool(url).connection() as conn:
        result = act_on_alert(
            conn,
            alert_id,
            act,
            topic_root=settings.mqtt.topic_root,
            publish=_order_publisher(),
            clock=settings.clock,
        )
    alerts.clear()
    fleet_health.clear()
    machine_detail.clear()
    return result.alert

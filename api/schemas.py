"""Request and response bodies of the HTTP API (the OpenAPI schema is generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

Status = Literal["open", "acknowledged", "resolved", "dismissed", "cleared", "failed"]
SeverityName = Literal["low", "medium", "high", "critical"]
Role = Literal["viewer", "operator", "maintenance", "admin"]
MaintenanceAction = Literal["inspection", "preventive", "repair"]
WebhookEvent = Literal[
    "alert.raised",
    "alert.updated",
    "alert.acknowledged",
    "alert.resolved",
    "alert.dismissed",
    "alert.cleared",
    "alert.failed",
    "alert.escalated",
]


class _Out(BaseModel):
    model_config = ConfigDict(ser_json_inf_nan="null")


class Problem(BaseModel):
    detail: str | list[Any] = Field(
        description="What is wrong: a sentence, or one entry per invalid field."
    )


class Health(_Out):
    status: Literal["ok"]


class Ready(_Out):
    status: Literal["ready"]
    database: Literal["ok"]


class Transition(_Out):
    from_status: Status | None
    to_status: Status
    actor: str
    reason: str
    detail: dict[str, Any]
    at: datetime


class Alert(_Out):
    id: int
    machine_id: str
    mode: str
    status: Status
    severity: SeverityName
    failure_prob: float | None
    ttf_h: float | None = Field(description="Predicted hours to failure.")
    ttf_low_h: float | None
    ttf_high_h: float | None
    contributions: Any = Field(description="Top feature contributions of the raising prediction.")
    model_version_id: int | None
    inputs_age_s: float | None = Field(description="Age of the model inputs when raised.")
    recommended_action: str | None
    created_at: datetime
    updated_at: datetime
    escalated_at: datetime | None
    version: int = Field(description="Increases on every change; send it as expected_version.")
    change_seq: int = Field(description="Position in the change stream (see /v1/alerts/changes).")
    policy_version: int | None = Field(
        default=None, description="The alert policy version that raised it (null: settings)."
    )
    raised_by_ts: datetime | None = Field(
        default=None, description="Time of the prediction that raised it."
    )


class AlertDetail(Alert):
    transitions: list[Transition]


class AlertPage(_Out):
    alerts: list[Alert]
    next_before_id: int | None = Field(description="Pass as before_id for the next page.")


class AlertChanges(_Out):
    alerts: list[Alert] = Field(description="Alerts created or changed after the cursor, in order.")
    next_cursor: int = Field(description="Pass as cursor on the next poll.")
    has_more: bool


class _Change(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="Fail with 409 unless the alert is at it."
    )


class AckRequest(_Change):
    reason: str = Field(default="", max_length=500)


class ResolveRequest(_Change):
    action: MaintenanceAction = Field(
        description="The maintenance done (sent as a maintenance order)."
    )
    note: str = Field(default="", max_length=2000)


class DismissRequest(_Change):
    reason: str = Field(min_length=1, max_length=500, description="Why this was a false alarm.")


class Risk(_Out):
    ts: datetime
    failure_prob: float | None
    rul_h: float | None
    rul_low_h: float | None
    rul_high_h: float | None
    mode: str | None
    data_quality: str
    model_version_id: int | None


class MachineSummary(_Out):
    id: str
    site_id: str
    line_id: str | None
    type_id: str
    risk: Risk | None
    open_alerts: int


class Reading(_Out):
    ts: datetime
    values: dict[str, Any]


class MachineDetail(_Out):
    id: str
    site_id: str
    line_id: str | None
    type_id: str
    type_name: str
    sensors: list[dict[str, Any]]
    failure_modes: list[str]
    installed_at: datetime
    latest_reading: Reading | None
    risk: Risk | None
    open_alert_ids: list[int]


class ReadingBucket(_Out):
    ts: datetime = Field(description="Start of the bucket.")
    sensor: str
    avg: float | None
    min: float | None
    max: float | None
    count: int


class Readings(_Out):
    machine_id: str
    start: datetime
    end: datetime
    bucket_s: int
    points: list[ReadingBucket]


class Prediction(_Out):
    machine_id: str
    ts: datetime
    role: str
    model_version_id: int | None
    failure_prob: float | None
    rul_h: float | None
    rul_low_h: float | None
    rul_high_h: float | None
    anomaly: float | None
    mode: str | None
    contributions: Any
    data_quality: str
    created_at: datetime


class ModelVersion(_Out):
    id: int
    name: str
    version: int
    created_at: datetime
    artifact_sha256: str
    feature_hash: str
    metrics: dict[str, Any]
    params: dict[str, Any]
    train_from: datetime | None
    train_to: datetime | None
    code_revision: str | None
    aliases: list[str]


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=2**31 - 1)
    alias: Literal["champion", "challenger"] = "champion"


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alias: Literal["champion", "challenger"] = "champion"


class AliasChange(_Out):
    name: str
    alias: str
    version_id: int
    previous_version_id: int | None


class RoiSummary(_Out):
    since: datetime
    until: datetime
    alerts_raised: int
    alerts_resolved: int
    alerts_dismissed: int
    alerts_open_now: int
    failures: int
    maintenance_events: int
    failure_cost: float
    estimated_savings: float = Field(
        description="Resolved alerts x (unplanned - planned cost) - false-alarm inspections."
    )


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: AnyHttpUrl
    secret: str | None = Field(
        default=None, min_length=16, max_length=200, description="Generated when omitted."
    )
    events: list[WebhookEvent] = Field(default_factory=list, description="Empty = every event.")


class Webhook(_Out):
    id: int
    url: str
    events: list[str]
    active: bool
    created_by: str
    created_at: datetime


class WebhookCreated(Webhook):
    secret: str = Field(description="Shown once: verify X-Forewarn-Signature with it.")


class WebhookAttempt(_Out):
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float


class WebhookDelivery(_Out):
    id: int
    event: str
    alert_id: int | None
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    created_at: datetime
    delivered_at: datetime | None
    log: list[WebhookAttempt]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: Role


class KeyInfo(_Out):
    id: int
    name: str
    role: Role
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(_Out):
    name: str
    role: Role
    prefix: str
    key: str = Field(description="Shown once; only its hash is stored.")

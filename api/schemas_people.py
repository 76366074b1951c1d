"""Request and response bodies for people (accounts, assignment, comments) and notifications."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, model_validator

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
Role = Literal["viewer", "operator", "maintenance", "admin"]
Severity = Literal["low", "medium", "high", "critical"]
NotifyEvent = Literal[
    "alert.raised",
    "alert.updated",
    "alert.acknowledged",
    "alert.resolved",
    "alert.dismissed",
    "alert.escalated",
    "alert.assigned",
    "alert.commented",
    "alert.cleared",
    "alert.failed",
]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(pattern=EMAIL_PATTERN, max_length=320)
    role: Role
    password: str = Field(min_length=10, max_length=200)


class User(BaseModel):
    id: int
    name: str
    email: str
    role: str
    active: bool
    created_by: str
    created_at: datetime
    last_login_at: datetime | None


class Assign(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: int | None = Field(ge=1, description="The person to assign; null unassigns.")


class CommentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=4000)


class Comment(BaseModel):
    id: int
    author: str
    body: str
    at: datetime


class Assignee(BaseModel):
    id: int
    name: str
    email: str


class AlertPeople(BaseModel):
    alert_id: int
    assignee: Assignee | None
    comments: list[Comment]


class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["email", "teams", "slack", "webhook"]
    target: str = Field(min_length=3, max_length=2000, description="E-mail address or URL.")
    secret: str | None = Field(default=None, min_length=16, max_length=200)
    user_id: int | None = Field(default=None, ge=1, description="The person this channel reaches.")
    digest_hour: int | None = Field(
        default=None, ge=0, le=23, description="Daily digest hour (UTC)."
    )

    @model_validator(mode="after")
    def _target(self) -> ChannelCreate:
        if self.kind == "email":
            if not re.match(EMAIL_PATTERN, self.target):
                raise ValueError("an e-mail channel's target is an e-mail address")
        else:
            AnyHttpUrl(self.target)
        return self


class Channel(BaseModel):
    id: int
    name: str
    kind: str
    target: str
    user_id: int | None
    digest_hour: int | None
    active: bool
    created_by: str
    created_at: datetime


class RuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    channel_id: int = Field(ge=1)
    site_id: str | None = None
    line_id: str | None = None
    type_id: str | None = None
    min_severity: Severity | None = None
    mode: str | None = None
    events: list[NotifyEvent] = Field(
        default_factory=lambda: ["alert.raised"],  # type: ignore[arg-type]
        min_length=1,
    )
    remind_every_s: int | None = Field(default=None, ge=60, le=7 * 86400)
    escalate_after_s: int | None = Field(default=None, ge=60, le=30 * 86400)
    escalate_channel_id: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _escalation(self) -> RuleCreate:
        if (self.escalate_after_s is None) != (self.escalate_channel_id is None):
            raise ValueError("escalate_after_s and escalate_channel_id go together")
        return self


class Rule(BaseModel):
    id: int
    name: str
    channel_id: int
    site_id: str | None
    line_id: str | None
    type_id: str | None
    min_severity: str | None
    mode: str | None
    events: list[str]
    remind_every_s: int | None
    escalate_after_s: int | None
    escalate_channel_id: int | None
    active: bool
    created_by: str
    created_at: datetime


class MuteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: Literal["machine", "line", "site"]
    scope_id: str = Field(min_length=1, max_length=200)
    starts_at: datetime
    ends_at: datetime
    reason: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _order(self) -> MuteCreate:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("starts_at and ends_at need a timezone (e.g. 2026-03-02T08:00:00Z)")
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class Mute(BaseModel):
    id: int
    scope: str
    scope_id: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime


class NotificationAttempt(BaseModel):
    attempt: int
    at: datetime
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: float


class Notification(BaseModel):
    id: int
    alert_id: int | None
    rule_id: int | None
    channel_id: int
    channel: str
    channel_kind: str
    kind: str
    event: str
    subject: str
    status: Literal["pending", "delivered", "failed", "muted"]
    attempts: int
    created_at: datetime
    delivered_at: datetime | None
    log: list[NotificationAttempt]

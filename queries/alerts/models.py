"""Alerts as the service returns them (and the API serves them, unchanged)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Status(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


class Resolution(enum.StrEnum):
    """Why an alert was closed, in the words SOCs use."""

    TRUE_POSITIVE = "true_positive"
    BENIGN_TRUE_POSITIVE = "benign_true_positive"  # real activity, allowed (a pentest, admin)
    FALSE_POSITIVE = "false_positive"


class Severity(enum.StrEnum):
    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class AlertBase(BaseModel):
    id: str
    rule_id: str | None = None
    rule_name: str | None = None
    severity: str | None = None
    risk_score: float | None = None
    tactics: list[str] = []
    techniques: list[str] = []
    host: str | None = None
    status: str | None = None
    assignee: str | None = None
    resolution: str | None = None
    summary: str | None = None


class AlertRead(AlertBase):
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    hit_count: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    seq: int
    details: Any = None


class AlertUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    assignee: str | None = Field(
        default=None, max_length=200, description='a name, or "" to unassign'
    )
    resolution: Resolution | None = Field(
        default=None, description="why it was closed; only with `status: closed`"
    )
    comment: str | None = Field(default=None, max_length=10_000)

    @model_validator(mode="after")
    def _something(self) -> AlertUpdate:
        if (
            self.status is None
            and self.assignee is None
            and self.comment is None
            and self.resolution is None
        ):
            raise ValueError("give at least one of status, assignee, resolution, comment")
        if self.resolution is not None and self.status not in (None, Status.CLOSED):
            raise ValueError("a resolution goes with status 'closed'")
        return self


class Entity(BaseModel):
    role: str | None
    id: str
    kind: str
    label: str
    properties: dict[str, Any]


class Evidence(BaseModel):
    relationship: str
    source: str
    target: str
    time: datetime | None = None
    first_time: datetime | None = None
    last_time: datetime | None = None
    count: int | None = None
    sources: list[str] = []
    raw: Any = None


class AuditEntryRead(BaseModel):
    id: str
    alert_id: str
    actor: str
    actor_name: str | None = None
    at: datetime
    changes: dict[str, Any]
    comment: str | None = None
    seq: int | None = None


class Mitre(BaseModel):
    tactics: list[str]
    techniques: list[str]


class AlertDetail(AlertRead):
    rule: dict[str, Any] | None = None
    mitre: Mitre
    entities: list[Entity]
    evidence: list[Evidence]
    audit: list[AuditEntryRead]

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Status(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


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
    summary: str | None = None


class AlertRead(AlertBase):
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    hit_count: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    seq: int
    details: Any = None


class OcsfDetectionFinding(BaseModel):
    """An alert as an OCSF 1.3 Detection Finding (`format=ocsf`); the fields checked here are
    the ones every finding carries, the rest follows the OCSF schema."""

    model_config = ConfigDict(extra="allow")

    class_uid: Literal[2004]
    category_uid: Literal[2]
    type_uid: int
    activity_id: int
    time: int | None = None
    severity_id: int
    status_id: int
    finding_info: dict[str, Any]
    metadata: dict[str, Any]


class AlertPage(BaseModel):
    items: list[AlertRead | OcsfDetectionFinding] = Field(
        description="native alerts, or OCSF Detection Findings with `format=ocsf`"
    )
    next_cursor: str = Field(description="pass back as `cursor` for what is new or changed since")
    has_more: bool = Field(description="true when another page is ready right now")
    high_seq: int = Field(description="the newest committed change number this page considered")


class AlertUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    assignee: str | None = Field(
        default=None, max_length=200, description='a name, or "" to unassign'
    )
    comment: str | None = Field(default=None, max_length=10_000)

    @model_validator(mode="after")
    def _something(self) -> AlertUpdate:
        if self.status is None and self.assignee is None and self.comment is None:
            raise ValueError("give at least one of status, assignee, comment")
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


AlertFormat = Literal["native", "ocsf"]

"""The alerts endpoints' schema: the alert models of `queries.alerts` as they are, and what
only the API adds (pages with cursors, OCSF findings)."""

from __future__ import annotations

from typing import Any, Literal

from provgraph.queries.alerts.models import (
    AlertDetail,
    AlertRead,
    AlertUpdate,
    AuditEntryRead,
    Entity,
    Evidence,
    Severity,
    Status,
)
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AlertDetail",
    "AlertFormat",
    "AlertPage",
    "AlertRead",
    "AlertUpdate",
    "AuditEntryRead",
    "Entity",
    "Evidence",
    "OcsfDetectionFinding",
    "Severity",
    "Status",
]


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


AlertFormat = Literal["native", "ocsf"]

from __future__ import annotations

from datetime import datetime
from typing import Any

from provgraph.api.alerts.models import Severity
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field


class WebhookBase(BaseModel):
    description: str | None = Field(default=None, max_length=500)
    min_severity: Severity | None = Field(
        default=None, description="only alerts at or above this severity"
    )


class WebhookCreate(WebhookBase):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(description="http(s) endpoint that receives POSTed alerts")

    from_start: bool = Field(
        default=False,
        description="also push alerts that exist already (default: only "
        "alerts new or changed after the subscription)",
    )
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="signing secret; default: generated, shown once",
    )


class WebhookRead(WebhookBase):
    id: str
    url: AnyHttpUrl | None = Field(
        description="the endpoint (stored sealed); null when this host cannot open it, see "
        "`sealing_error`"
    )
    sealing_error: str | None = Field(
        default=None,
        description="why this API host cannot open the subscription's sealed URL and secret "
        "(its sealing key is not the one they were sealed with); its alerts wait meanwhile",
    )
    active: bool
    created_at: datetime | None = None
    cursor: int = Field(description="the last alert change (seq) handled")
    delivered: int = 0
    failed: int = 0
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None


class WebhookCreated(WebhookRead):
    secret: str = Field(description="HMAC-SHA256 key for the signature header; shown once")


class DeliveryRead(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    subscription_id: str
    alert_id: str
    alert_seq: int
    status: str = Field(description="delivered | failed")
    attempts: int
    status_code: int | None = None
    error: str | None = None
    first_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    log: list[dict[str, Any]] = []

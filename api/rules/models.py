from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class RuleRead(BaseModel):
    id: str
    name: str
    description: str | None = None
    severity: str | None = None
    risk_score: float | None = None
    tactics: list[str] = []
    techniques: list[str] = []
    references: list[str] = []
    schedule: dict[str, Any] | None = None
    time_limit_seconds: float | None = Field(
        default=None, description="how long the rule's query may run before the server stops it"
    )
    source: str | None = Field(
        default=None, description="where the rule comes from: shipped, or a site rule folder"
    )
    path: str | None = None


class RuleDetail(RuleRead):
    parameters: dict[str, Any] = Field(
        default={}, description="effective values: the site settings over the shipped defaults"
    )
    site_parameters: dict[str, Any] = Field(
        default={}, description="the parameters the site settings (provgraph.yaml) set"
    )
    query: str | None = None
    entities: list[dict[str, Any]] = []
    false_positives: list[str] = []
    investigation: str | None = None
    summary: str | None = None


class RuleRunRequest(BaseModel):
    since: datetime | None = Field(default=None, description="default: the rule's look-back")
    until: datetime | None = Field(default=None, description="default: now")
    rules: list[str] | None = Field(default=None, description="rule ids; default: all")


class RuleRunResult(BaseModel):
    runs: list[dict[str, Any]] = Field(
        description="per rule: matches, alerts created/updated/unchanged, seconds, error"
    )

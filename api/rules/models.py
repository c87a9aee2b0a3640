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
        default=None,
        description="where the rule comes from: shipped, a site rule folder, or sigma "
        "(imported by `provgraph sigma import`)",
    )
    path: str | None = None
    enabled: bool = Field(default=True, description="false: the rule is listed but never runs")
    disabled: dict[str, Any] | None = Field(
        default=None, description="when and why the rule was disabled (null while enabled)"
    )


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
    metadata: dict[str, Any] = Field(
        default={},
        description="where the rule came from; a rule imported from Sigma has `sigma`: its id, "
        "title, level, status, author, tags, references, false positives and source file",
    )


class RuleUpdate(BaseModel):
    enabled: bool = Field(description="false stops the rule from running; true turns it back on")


class RuleRunRequest(BaseModel):
    since: datetime | None = Field(default=None, description="default: the rule's look-back")
    until: datetime | None = Field(default=None, description="default: now")
    rules: list[str] | None = Field(default=None, description="rule ids; default: all")


class RuleRunResult(BaseModel):
    runs: list[dict[str, Any]] = Field(
        description="per rule: matches, alerts created/updated/unchanged, seconds, error"
    )

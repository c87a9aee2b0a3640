from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Rejection(BaseModel):
    """One rejected record, as the CLI's dead-letter file has it (raw cut to an excerpt)."""

    source: str = Field(
        description="the parser that read it, e.g. sysmon; unknown before detection"
    )
    path: str = Field(description="the body's name, as in `source` of the answer")
    line: int = Field(
        description="line (NDJSON, text), row's last line (CSV), element (JSON array) or record "
        "position (EVTX); 0 means the body itself"
    )
    reason: str
    field: str | None = Field(default=None, description="the offending field, when one is known")
    raw: str = Field(default="", description="the record as received, its first 500 characters")
    raw_truncated: bool = False


class IngestResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    source: str = Field(description="the name records are traced back to (`<http>:…`)")
    format: str | None = Field(default=None, description="as named, or null when detected")
    bytes_received: int
    bytes_decoded: int
    accepted: int = 0
    skipped: dict[str, int] = Field(default={}, description="records not relevant, by reason")
    rejected: dict[str, int] = Field(default={}, description="records refused, by reason")
    rejections: list[Rejection] = Field(
        default=[], description="the first 100 rejected records in body order, each with its line"
    )
    rejections_total: int = Field(
        default=0, description="how many records were rejected in all (more than listed past 100)"
    )
    problem: str | None = Field(
        default=None,
        description="why the body failed as a whole, when it did: unreadable, cut short (EVTX), "
        "or records but no events",
    )
    written: int = Field(default=0, description="events written to the graph")
    rules: list[dict[str, Any]] = Field(default=[], description="rule runs over the new events")
    summary: dict[str, Any] = Field(default={}, description="the pipeline's full report")

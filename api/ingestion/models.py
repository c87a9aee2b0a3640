from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class IngestResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    source: str = Field(description="the name records are traced back to (`<http>:…`)")
    format: str | None = Field(default=None, description="as named, or null when detected")
    bytes_received: int
    bytes_decoded: int
    accepted: int = 0
    skipped: dict[str, int] = Field(default={}, description="records not relevant, by reason")
    rejected: dict[str, int] = Field(default={}, description="records refused, by reason")
    written: int = Field(default=0, description="events written to the graph")
    rules: list[dict[str, Any]] = Field(default=[], description="rule runs over the new events")
    summary: dict[str, Any] = Field(default={}, description="the pipeline's full report")

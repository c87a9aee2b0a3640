from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CypherRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=100_000, description="read-only Cypher")
    parameters: dict[str, Any] = Field(default={}, description="values for `$name` references")
    max_rows: int | None = Field(default=None, ge=1, description="capped by the server's limit")
    timeout_seconds: float | None = Field(
        default=None, gt=0, description="capped by the server's limit"
    )


class CypherResult(BaseModel):
    columns: list[str]
    rows: list[dict[str, Any]]
    row_count: int
    truncated: bool = Field(description="true when more rows existed than `max_rows`")
    withheld: int = Field(
        default=0,
        description="rows and list items left out because they were the API's own records "
        "(keys, webhooks, deliveries, audit entries, counters), not the provenance graph",
    )
    max_rows: int
    timeout_seconds: float

from __future__ import annotations

from pydantic import BaseModel, Field


class SearchHit(BaseModel):
    id: str = Field(description="node id as the graph endpoints take it: `<Label>:<key>`")
    kind: str = Field(description="process, file, host or address")
    label: str
    host: str | None = None
    time: str | None = Field(None, description="a process's start time, UTC")
    detail: str | None = Field(None, description="command line, path or FQDN")


class SearchResults(BaseModel):
    hits: list[SearchHit]
    truncated: bool = Field(description="true when `limit` stopped the search")

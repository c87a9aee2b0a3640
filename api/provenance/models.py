from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

Props = dict[str, Any]


class ProcessNode(BaseModel):
    process: Props
    children: list[ProcessNode] = []


class ProcessLineage(BaseModel):
    process: Props
    ancestry: list[Props] = Field(description="root first, the direct parent last")
    descendants: list[ProcessNode] = Field(description="the process's children, as trees")
    truncated: bool
    wrote: list[Props] = []
    connected: list[Props] = []
    executed: list[Props] = []


class FileWriter(BaseModel):
    process: Props
    first_time: datetime | None = None
    last_time: datetime | None = None
    count: int | None = None
    ops: list[str] = []
    sources: list[str] = []
    lineage: list[Props] = Field(description="the writer's process tree, root first")


class FileExecution(BaseModel):
    process: Props
    time: datetime | None = None
    parent: Props | None = None
    children: int = 0


class FileProvenance(BaseModel):
    file: Props
    writers: list[FileWriter]
    executions: list[FileExecution]
    written_then_executed: bool = Field(description="an execution started after the first write")


class FileProvenanceList(BaseModel):
    files: list[FileProvenance]


class TimelineEvent(BaseModel):
    time: datetime
    kind: str
    process: Props
    target: str | None = None
    details: Props = {}


class Timeline(BaseModel):
    host: str
    events: list[TimelineEvent]
    next_cursor: str | None = Field(description="null on the last page")


class Contact(BaseModel):
    process: Props
    first_time: datetime | None = None
    last_time: datetime | None = None
    count: int | None = None
    local_port: int | None = None


class ConnectionContacts(BaseModel):
    connection: Props
    contacts: list[Contact]


class DomainContacts(BaseModel):
    domain: Props
    resolvers: list[Contact]
    answers: list[str] = []


class Contacts(BaseModel):
    query: str
    connections: list[ConnectionContacts]
    domains: list[DomainContacts]

from __future__ import annotations

import enum
from datetime import datetime

from pydantic import BaseModel, Field


class Scope(enum.StrEnum):
    INGEST = "ingest"
    READ = "read"  # alerts, subgraphs, provenance, rules, metrics
    HUNT = "hunt"  # ad-hoc Cypher over the provenance graph (POST /query/cypher)
    TRIAGE = "triage"
    ADMIN = "admin"  # implies every other scope


class ApiKeyBase(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(min_length=1)


class ApiKeyCreate(ApiKeyBase):
    pass


class ApiKeyRead(ApiKeyBase):
    id: str
    created_at: datetime | None = None
    revoked: bool = False


class ApiKeyCreated(ApiKeyRead):
    secret: str = Field(description="shown once; only its keyed hash is stored, sealed")


class Principal(BaseModel):
    """Who is calling: the verified key (never its secret)."""

    key_id: str
    name: str
    scopes: frozenset[Scope]

    def allows(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes

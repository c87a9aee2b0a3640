"""Saved hunts: named, parameterised read-only Cypher for the console's query panel.

Shipped hunts are data files (`queries/hunts/*.yml`); analysts' own hunts are `(:Hunt)`
nodes, so every API process sees the same ones. A hunt only stores text: it runs through the
ad-hoc Cypher endpoint (`POST /api/v1/query/cypher`), read-only, time-limited and row-capped
there, with its parameters sent as query parameters, never pasted into the text.

    id: account_activity
    name: What did this account do
    parameters:
      - {name: account, label: Account, type: string, default: '', required: true}
    query: |
      MATCH (p:Process) WHERE toLower(p.user) = toLower($account) RETURN p
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from provgraph.graph.tx import Graph
from provgraph.graph.values import plain, utc_text
from provgraph.queries.errors import NotFound
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

HUNTS_DIR = Path(__file__).parent / "hunts"
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class HuntNotFound(NotFound):
    what = "hunt"


class HuntError(ValueError):
    """A shipped hunt file that does not load (names the file and the field)."""


class HuntParameter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=100)
    label: str | None = Field(default=None, max_length=200)
    type: Literal["string", "int", "list"] = "string"
    default: Any = None
    required: bool = False

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"{value!r} is not a Cypher parameter name")
        return value


class HuntCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10_000)
    query: str = Field(min_length=1, max_length=100_000)
    parameters: list[HuntParameter] = Field(default=[], max_length=50)


class Hunt(HuntCreate):
    id: str
    shipped: bool
    created_by: str | None = None
    created_at: datetime | None = None


def _load(path: Path) -> Hunt:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise HuntError(f"{path}: {error}") from error
    if not isinstance(data, dict) or "id" not in data:
        raise HuntError(f"{path}: expected a mapping with an 'id'")
    try:
        return Hunt.model_validate({**data, "shipped": True})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise HuntError(f"{path}: {where}: {first['msg']}") from None


@lru_cache(maxsize=1)
def shipped_hunts() -> tuple[Hunt, ...]:
    return tuple(_load(p) for p in sorted(HUNTS_DIR.glob("*.yml")))


FIELDS = (
    "h {.id, .name, .description, .query, .parameters, .created_by, "
    + utc_text("h", "created_at")
    + "}"
)
LIST = "MATCH (h:Hunt) RETURN " + FIELDS + " AS h ORDER BY h.name, h.id"
CREATE = (
    "CREATE (h:Hunt {id: $id, name: $name, description: $description, query: $query, "
    "parameters: $parameters, created_by: $actor, created_at: datetime()}) RETURN "
    + FIELDS
    + " AS h"
)
DELETE = "MATCH (h:Hunt {id: $id}) WITH h, h {.*} AS gone DETACH DELETE h RETURN gone.id AS id"


def _saved(row: dict[str, Any]) -> Hunt:
    data = plain(row)
    data["parameters"] = json.loads(data.get("parameters") or "[]")
    data["description"] = data.get("description") or ""
    return Hunt.model_validate({**data, "shipped": False})


def list_hunts(graph: Graph) -> list[Hunt]:
    """Shipped hunts first, then the saved ones by name."""
    saved = [_saved(row["h"]) for row in graph.read_plain(LIST, {})]
    return [*shipped_hunts(), *saved]


def save_hunt(graph: Graph, *, hunt: HuntCreate, actor: str) -> Hunt:
    params = {
        "id": f"user-{uuid.uuid4().hex[:12]}",
        "name": hunt.name,
        "description": hunt.description,
        "query": hunt.query,
        "parameters": json.dumps([p.model_dump() for p in hunt.parameters]),
        "actor": actor,
    }
    rows = graph.write(CREATE, params)
    return _saved(rows[0]["h"])


def delete_hunt(graph: Graph, *, hunt_id: str) -> None:
    if any(h.id == hunt_id for h in shipped_hunts()):
        raise ValueError(f"hunt {hunt_id!r} is shipped with provgraph and cannot be deleted")
    if not graph.write(DELETE, {"id": hunt_id}):
        raise HuntNotFound(hunt_id)

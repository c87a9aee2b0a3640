from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, Field


class GraphFormat(enum.StrEnum):
    CYTOSCAPE = "cytoscape"
    GRAPHML = "graphml"


class Rel(enum.StrEnum):
    """Relationship types a client may ask to walk (the code-side whitelist)."""

    SPAWNED = "SPAWNED"
    EXECUTED = "EXECUTED"
    WROTE = "WROTE"
    CONNECTED_TO = "CONNECTED_TO"
    RESOLVED = "RESOLVED"
    ON_HOST = "ON_HOST"
    INVOLVES = "INVOLVES"


class CyNodeData(BaseModel):
    model_config = {"extra": "allow"}
    id: str
    label: str
    kind: str


class CyEdgeData(BaseModel):
    model_config = {"extra": "allow"}
    id: str
    source: str
    target: str
    label: str


class CyNode(BaseModel):
    data: CyNodeData
    classes: str = ""


class CyEdge(BaseModel):
    data: CyEdgeData
    classes: str = ""


class CyElements(BaseModel):
    nodes: list[CyNode]
    edges: list[CyEdge]


class CytoscapeGraph(BaseModel):
    """Cytoscape.js loads `elements` as is: `cytoscape({elements: body.elements})`."""

    elements: CyElements
    truncated: bool = Field(description="true when a depth or node limit cut the walk short")
    limits: dict[str, Any] = {}
    roots: list[str] = Field(default=[], description="ids of the nodes the walk started from")
    groups: list[dict[str, Any]] = Field(
        default=[],
        description="a node's facts of one kind summarised as a `Group` node: `{id, node, rel, "
        "of, count, shown}`; `/graph/facts?node=&rel=` lists them",
    )

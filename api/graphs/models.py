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
    ACCEPTED = "ACCEPTED"
    RESOLVED = "RESOLVED"
    # -- accounts, logons and Windows system changes (graph v2, part 2) --
    RAN_AS = "RAN_AS"
    IN_LOGON = "IN_LOGON"
    LOGGED_ON = "LOGGED_ON"
    FAILED_LOGON = "FAILED_LOGON"
    USED_CREDENTIALS = "USED_CREDENTIALS"
    ACCESSED_SHARE = "ACCESSED_SHARE"
    INSTALLED_SERVICE = "INSTALLED_SERVICE"
    RUNS = "RUNS"
    CHANGED_TASK = "CHANGED_TASK"
    RAN_SCRIPT = "RAN_SCRIPT"
    # k1: what a process does to the system
    LOADED = "LOADED"
    LOADED_DRIVER = "LOADED_DRIVER"
    ACCESSED = "ACCESSED"
    INJECTED = "INJECTED"
    READ_RAW = "READ_RAW"
    WROTE_REGISTRY = "WROTE_REGISTRY"
    CREATED_PIPE = "CREATED_PIPE"
    CONNECTED_PIPE = "CONNECTED_PIPE"
    REGISTERED_WMI = "REGISTERED_WMI"
    BOUND_TO = "BOUND_TO"
    SET_CLIPBOARD = "SET_CLIPBOARD"
    TAMPERED = "TAMPERED"
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

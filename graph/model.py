"""The graph model, declared once: every label with its key, properties and times, every edge
type, and every constraint and index, the API's own records included.

Everything else is derived from these declarations: the schema statements (`graph.schema`),
the labels a client may name and how nodes are keyed (`queries.nodes`), the alert entity types
(`queries.alerts`), the relationship types the provenance reads walk (`queries.subgraph`), and
the records ad-hoc Cypher must never serve (`api.query`). Labels and property names written
into query text come from here, never from input.

Owners: `graph` writes the provenance nodes and edges (`graph.writer`), `queries` the alerts
and their change counter, `api` its keys, audit trail and webhooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Owner = Literal["graph", "queries", "api"]


@dataclass(frozen=True)
class Index:
    """A secondary (range) index on one property, or a composite one on several."""

    properties: tuple[str, ...]
    name: str | None = None  # default: <label>_<prop>[_<prop>…]


@dataclass(frozen=True)
class NodeType:
    label: str
    key: str  # unique: every node is MERGEd on it, and a uniqueness constraint holds it
    owner: Owner
    properties: tuple[str, ...] = ()  # besides the key
    times: tuple[str, ...] = ()  # the properties that hold DateTimes (UTC)
    indexes: tuple[Index, ...] = ()
    entity: str | None = None  # the alert entity type that names it ("process", …)
    internal: bool = False  # the API's own records: withheld from ad-hoc Cypher and clients

    def index_name(self, index: Index) -> str:
        return index.name or "_".join([self.label.lower(), *index.properties])

    @property
    def constraint_name(self) -> str:
        return f"{self.label.lower()}_{self.key}_unique"


@dataclass(frozen=True)
class EdgeType:
    type: str
    start: str  # label
    end: str  # label, or "*" for any entity
    properties: tuple[str, ...] = ()
    times: tuple[str, ...] = ()
    provenance: bool = False  # what a process did: walked by the provenance reads
    internal: bool = False


def _indexes(*specs: str | tuple[str, ...]) -> tuple[Index, ...]:
    return tuple(Index((s,) if isinstance(s, str) else s) for s in specs)


TIMED = ("first_time", "last_time", "times")

NODES: tuple[NodeType, ...] = (
    NodeType(
        "Host",
        "name",
        "graph",
        properties=("fqdn", "first_seen", "last_seen"),
        times=("first_seen", "last_seen"),
        entity="host",
    ),
    NodeType(
        "Process",
        "uid",
        "graph",
        properties=(
            "host",
            "pid",
            "image",
            "name",
            "command_line",
            "user",
            "logon_id",
            "start_time",
            "end_time",
            "parent_uid",
            "placeholder",
            "sources",
        ),  # fmt: skip
        times=("start_time", "end_time"),
        # (host, …): a host's timeline in time order, read from the index a window at a time.
        indexes=_indexes(
            "name",
            "host",
            "start_time",
            "pid",
            ("host", "start_time"),
            ("host", "end_time"),
            ("host", "placeholder"),
        ),
        entity="process",
    ),
    NodeType(
        "File",
        "key",
        "graph",
        properties=("host", "path", "name", "ext"),
        indexes=(*_indexes("name", "path"), Index(("host", "ext"), name="file_host_ext")),
        entity="file",
    ),
    NodeType(
        "Connection",
        "key",
        "graph",
        properties=("ip", "port", "protocol", "hostname", "is_public", "is_loopback"),
        indexes=_indexes("ip"),
        entity="connection",
    ),
    NodeType("Domain", "name", "graph"),
    NodeType(
        "Alert",
        "id",
        "queries",
        properties=(
            "rule_id",
            "rule_name",
            "severity",
            "risk_score",
            "tactics",
            "techniques",
            "host",
            "first_seen",
            "last_seen",
            "hit_count",
            "status",
            "assignee",
            "created_at",
            "updated_at",
            "summary",
            "details",
            "suppression_key",
            "match_keys",
            "seq",
        ),  # fmt: skip
        times=("first_seen", "last_seen", "created_at", "updated_at"),
        indexes=(
            *_indexes("last_seen", "status", "seq"),
            Index(("rule_id", "suppression_key"), name="alert_rule_suppression"),
            Index(("rule_id",), name="alert_rule_id"),
        ),
    ),
    # Analysts' own records from the console: a rule exception made from an alert (the engine
    # drops the matches it covers) and a saved hunt.
    NodeType(
        "RuleException",
        "id",
        "queries",
        properties=(
            "rule_id",
            "kind",
            "value",
            "role",
            "comment",
            "alert_id",
            "created_by",
            "created_by_name",
            "created_at",
        ),  # fmt: skip
        times=("created_at",),
        indexes=_indexes("rule_id"),
    ),
    NodeType(
        "Hunt",
        "id",
        "queries",
        properties=(
            "name",
            "description",
            "query",
            "parameters",
            "created_by",
            "created_at",
        ),  # fmt: skip
        times=("created_at",),
    ),
    # The alert change counter: without its constraint two first writers could MERGE two.
    NodeType("Counter", "name", "queries", properties=("value", "published"), internal=True),
    NodeType(
        "AuditEntry",
        "id",
        "queries",
        properties=("alert_id", "actor", "actor_name", "at", "changes", "comment", "seq"),
        times=("at",),
        internal=True,
    ),
    NodeType(
        "ApiKey",
        "id",
        "api",
        properties=("name", "hash", "scopes", "created_at", "revoked", "revoked_at"),
        times=("created_at", "revoked_at"),
        internal=True,
    ),
    NodeType("WebhookSubscription", "id", "api", internal=True),
    NodeType("WebhookDelivery", "id", "api", internal=True),
)

EDGES: tuple[EdgeType, ...] = (
    EdgeType("ON_HOST", "Process", "Host"),
    EdgeType(
        "SPAWNED", "Process", "Process", ("time", "source", "raw"), ("time",), provenance=True
    ),
    EdgeType("EXECUTED", "Process", "File", ("time",), ("time",), provenance=True),
    EdgeType(
        "WROTE",
        "Process",
        "File",
        (*TIMED, "count", "ops", "access_masks", "sources", "raw"),
        TIMED,
        provenance=True,
    ),
    EdgeType(
        "CONNECTED_TO",
        "Process",
        "Connection",
        (*TIMED, "count", "local_port", "sources", "raw"),
        TIMED,
        provenance=True,
    ),
    EdgeType(
        "RESOLVED",
        "Process",
        "Domain",
        (*TIMED, "count", "answers", "sources", "raw"),
        TIMED,
        provenance=True,
    ),
    EdgeType("INVOLVES", "Alert", "*", ("role",)),
    EdgeType("HAS_AUDIT", "Alert", "AuditEntry", internal=True),
    EdgeType("DELIVERED", "WebhookSubscription", "WebhookDelivery", internal=True),
)

BY_LABEL: dict[str, NodeType] = {node.label: node for node in NODES}

# -- derived maps ------------------------------------------------------------------------------
NODE_KEYS: dict[str, str] = {node.label: node.key for node in NODES}
# Labels a client may name (node ids `<Label>:<key>`): everything but the API's own records.
CLIENT_LABELS: dict[str, str] = {n.label: n.key for n in NODES if not n.internal}
# Alert entity types: "process" -> ("Process", "uid")
ENTITY_LABELS: dict[str, tuple[str, str]] = {
    n.entity: (n.label, n.key) for n in NODES if n.entity is not None
}
PROVENANCE_RELS: tuple[str, ...] = tuple(e.type for e in EDGES if e.provenance)
INTERNAL_LABELS: frozenset[str] = frozenset(n.label for n in NODES if n.internal)
INTERNAL_RELATIONSHIP_TYPES: frozenset[str] = frozenset(e.type for e in EDGES if e.internal)

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


TIMED = ("first_time", "last_time", "times", "hours")

# Process properties a record fills in (besides uid, host and the times).
PROCESS_PROPS = (
    "pid",
    "image",
    "name",
    "command_line",
    "user",
    "logon_id",
    "integrity_level",
    "current_directory",
)
# PE facts on an image's File node, from ingest.model.ImageFacts (original_file_name is stored
# lower-cased as original_name, like Process.name).
IMAGE_PROPS = (
    "original_name",
    "company",
    "product",
    "description",
    "file_version",
    "product_version",
    "md5",
    "sha1",
    "sha256",
    "imphash",
    "signed",
    "signer",
    "signature_status",
)

NODES: tuple[NodeType, ...] = (
    NodeType(
        "Host",
        "name",
        "graph",
        properties=("fqdn", "os", "first_seen", "last_seen"),
        times=("first_seen", "last_seen"),
        entity="host",
    ),
    NodeType(
        "Process",
        "uid",
        "graph",
        properties=(
            "host",
            *PROCESS_PROPS,
            "ppid",
            "start_time",
            "end_time",
            "parent_uid",
            "placeholder",
            "guid",
            "aliases",
            "sources",
            "first_seen",
            "named_by",
            "named_at",
            "facts_before",
        ),  # fmt: skip
        times=("start_time", "end_time", "first_seen", "facts_before"),
        # Identity resolution looks processes up by host and pid (`graph.identity`); the index
        # on pid alone, which every host's pid 4 shared, is retired (`graph.schema`). (host, …):
        # a host's timeline in time order, read from the index a window at a time; (host,
        # facts_before, start_time): the processes that can have facts in a window, their
        # start read from the index entry.
        indexes=_indexes(
            "name",
            "host",
            "start_time",
            ("host", "pid"),
            ("host", "start_time"),
            ("host", "end_time"),
            ("host", "facts_before", "start_time"),
            ("host", "placeholder"),
        ),
        entity="process",
    ),
    NodeType(
        "File",
        "key",
        "graph",
        properties=("host", "path", "name", "ext", *IMAGE_PROPS, "facts_time"),
        times=("facts_time",),
        indexes=(
            *_indexes("name", "path", "original_name", "md5", "sha1", "sha256", "imphash"),
            Index(("host", "ext"), name="file_host_ext"),
        ),
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
    # -- accounts, logons and Windows system changes (graph v2, part 2) --
    NodeType(
        "Account",
        "key",
        "graph",
        # key = lower-case SID when any record gave one, else name_key (lower-case
        # DOMAIN\\name, DNS domains cut to their first label); see graph.accounts
        properties=("sid", "domain", "name", "name_key", "names"),
        indexes=_indexes("sid", "name_key", "name"),
        entity="account",
    ),
    NodeType(
        "Logon",
        "key",  # host|logon_id
        "graph",
        properties=(
            "host",
            "logon_id",
            "logon_type",
            "start_time",
            "end_time",
            "source_ip",
            "source_port",
            "workstation",
            "auth_package",
            "logon_process",
            "logon_guid",
            "elevated",
            "privileges",
            "sources",
            # 4624's facts of the request (what Sigma's logon rules read)
            "process_name",
            "key_length",
            "impersonation_level",
            "outbound_user",
            "subject_sid",
        ),  # fmt: skip
        times=("start_time", "end_time"),
        indexes=_indexes("host", "logon_guid", "source_ip", "start_time"),
        entity="logon",
    ),
    NodeType(
        "Share",
        "key",  # host|lower(share_name)
        "graph",
        properties=("host", "share_name", "share_path"),
        indexes=_indexes("share_name", "host"),
    ),
    NodeType(
        "Service",
        "key",  # host|lower(service_name)
        "graph",
        properties=(
            "host",
            "service_name",
            "image_path",
            "service_type",
            "start_type",
            "service_account",
            "installed_time",
        ),  # fmt: skip
        times=("installed_time",),
        indexes=_indexes("service_name", "host"),
    ),
    NodeType(
        "ScheduledTask",
        "key",  # host|lower(task_name)
        "graph",
        properties=("host", "task_name", "content", "content_time"),
        times=("content_time",),
        indexes=_indexes("task_name", "host"),
    ),
    NodeType(
        "ScriptBlock",
        "key",  # host|script_block_id
        "graph",
        properties=(
            "host",
            "script_block_id",
            "text",
            "path",
            "parts_total",
            "parts_seen",
            "complete",
            "part_numbers",
            "part_texts",
            "first_time",
        ),  # fmt: skip
        times=("first_time",),
        indexes=_indexes("host"),
    ),
    # -- k1: what a process does to the system (keys `<host>|<lower-case path or name>`) --
    NodeType(
        "RegistryKey", "key", "graph", properties=("host", "path", "name"), indexes=_indexes("path")
    ),
    NodeType("Pipe", "key", "graph", properties=("host", "name"), indexes=_indexes("name")),
    NodeType(
        "WmiObject",
        "key",  # <host>|filter:<name> or <host>|consumer:<name>
        "graph",
        properties=(
            "host",
            "kind",
            "name",
            "namespace",
            "query",
            "consumer_type",
            "destination",
            "facts_time",
        ),
        times=("facts_time",),
        indexes=_indexes("name"),
    ),
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
    NodeType(
        "Counter", "name", "queries", properties=("value", "published", "epoch"), internal=True
    ),
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
        # contents: Sysmon 15's stream texts (up to 16, each cut at 1,024 characters)
        (*TIMED, "count", "ops", "access_masks", "contents", "sources", "raw"),
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
        "ACCEPTED",
        "Process",
        "Connection",
        (*TIMED, "count", "local_ports", "sources", "raw"),
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
    # -- accounts, logons and Windows system changes (graph v2, part 2) --
    EdgeType("RAN_AS", "Process", "Account", ("time", "source"), ("time",), provenance=True),
    EdgeType("IN_LOGON", "Process", "Logon", ("time", "source"), ("time",), provenance=True),
    EdgeType(
        "LOGGED_ON", "Account", "Logon", ("time", "source", "raw"), ("time",), provenance=True
    ),
    EdgeType("ON_HOST", "Logon", "Host"),
    EdgeType(
        "FAILED_LOGON",
        "Account",
        "Host",
        (
            *TIMED,
            "count",
            "statuses",
            "sub_statuses",
            "failure_reasons",  # Defender FailureReason, ECS event.reason (accounts, part 2)
            "logon_types",
            "source_ips",
            "sources",
            "raw",
        ),
        TIMED,
        provenance=True,
    ),  # fmt: skip
    EdgeType(
        "USED_CREDENTIALS",
        "Process",
        "Account",
        (
            *TIMED,
            "count",
            "target_servers",
            "target_infos",
            "subject_names",  # 4648's SubjectUserName, as logged
            "source_ips",
            "sources",
            "raw",
        ),
        TIMED,
        provenance=True,
    ),
    # share access, service installs and task changes: from the Logon when the record names
    # one, else from the Account (and, for tasks, from the client process when named)
    *(
        EdgeType(
            "ACCESSED_SHARE",
            start,
            "Share",
            (*TIMED, "count", "access_masks", "relative_targets", "source_ips", "sources", "raw"),
            TIMED,
            provenance=True,
        )
        for start in ("Logon", "Account")
    ),  # fmt: skip
    *(
        EdgeType(
            "INSTALLED_SERVICE",
            start,
            "Service",
            (*TIMED, "count", "image_paths", "sources", "raw"),
            TIMED,
            provenance=True,
        )
        for start in ("Logon", "Account")
    ),
    EdgeType("RUNS", "Service", "File", ("time",), ("time",), provenance=True),
    *(
        EdgeType(
            "CHANGED_TASK",
            start,
            "ScheduledTask",
            (*TIMED, "count", "ops", "sources", "raw"),
            TIMED,
            provenance=True,
        )
        for start in ("Logon", "Account", "Process")
    ),
    EdgeType(
        "RAN_SCRIPT",
        "Process",
        "ScriptBlock",
        (*TIMED, "count", "sources", "raw"),
        TIMED,
        provenance=True,
    ),
    # -- k1: what a process does to the system --
    *(
        EdgeType(
            rel, start, end, (*TIMED, "count", *lists, "sources", "raw"), TIMED, provenance=True
        )
        for rel, start, end, lists in (
            ("LOADED", "Process", "File", ()),
            ("LOADED_DRIVER", "Host", "File", ()),
            ("ACCESSED", "Process", "Process", ("granted_access", "call_trace")),
            (
                "INJECTED",
                "Process",
                "Process",
                ("start_address", "start_module", "start_function", "actions"),
            ),
            ("READ_RAW", "Process", "File", ()),
            (
                "WROTE_REGISTRY",
                "Process",
                "RegistryKey",
                ("ops", "event_types", "details", "new_names", "access_masks"),
            ),
            ("CREATED_PIPE", "Process", "Pipe", ()),
            ("CONNECTED_PIPE", "Process", "Pipe", ()),
            ("REGISTERED_WMI", "Host", "WmiObject", ("operations", "users")),
            ("BOUND_TO", "WmiObject", "WmiObject", ("operations", "users")),
            ("SET_CLIPBOARD", "Process", "Host", ("hashes",)),
            ("TAMPERED", "Process", "File", ("types",)),
        )
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
# (a type declared for several start labels appears once)
PROVENANCE_RELS: tuple[str, ...] = tuple(dict.fromkeys(e.type for e in EDGES if e.provenance))
INTERNAL_LABELS: frozenset[str] = frozenset(n.label for n in NODES if n.internal)
INTERNAL_RELATIONSHIP_TYPES: frozenset[str] = frozenset(e.type for e in EDGES if e.internal)

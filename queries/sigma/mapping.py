"""Sigma logsources and fields onto today's provenance graph, as data.

Each modelled logsource is a graph pattern (`Logsource`) and a table of field rows (`Field`):
a Sigma field name, the Cypher expression over the pattern's variables that holds it, and its
kind. A row without an expression names a field the graph does not hold yet, with the reason;
a rule that uses it fails to compile with that reason, it is never dropped from a condition.
Graph v2 (issue 14) adds facts by adding rows here (or filling in an expression).

Pattern variables: `p` the acting process (for process_creation: the new process), `parent`
its creator (through SPAWNED), `f` a File, `w` a WROTE edge, `c` a Connection, `r` a
CONNECTED_TO or RESOLVED edge, `d` a Domain. Expressions are code constants, never input.

Lineage (provgraph's extension of Sigma, on every logsource): `Ancestor<Field>` is a process
anywhere above `p` through SPAWNED (`anc`), `Descendant<Field>` one anywhere below it (`desc`).
The backend turns every condition on them into an `EXISTS { … }` over a variable-length SPAWNED
path; these variables are never part of a logsource's pattern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["str", "int"]

# Why a field is missing, said once.
PE_FACTS = "PE facts (original file name, version info, hashes) are not in the graph until v2"
NOT_STORED = "ingest reads it but the graph does not store it yet"
NO_SOURCE = "no modelled source records it in the graph"
DIRECTION = "connection direction is not stored until v2 (inbound connections look outbound)"


@dataclass(frozen=True)
class Field:
    sigma: str  # Sigma field name, as rules spell it
    expr: str | None  # Cypher expression over the pattern's variables; None: not in the graph
    kind: Kind = "str"
    reason: str = ""  # why it is not in the graph (expr is None)
    note: str = ""  # a caveat worth reporting on every rule that uses the field
    ip: bool = False  # holds an IP address (the `cidr` modifier applies)

    @property
    def lineage(self) -> str | None:
        """ "anc" or "desc" for a lineage field (a process above or below `p`), else None."""
        if self.expr is None:
            return None
        head = self.expr.split(".", 1)[0]
        return head if head in LINEAGE else None

    @property
    def variables(self) -> frozenset[str]:
        """Pattern variables the expression reads (`parent.image` -> {"parent"})."""
        if self.expr is None:
            return frozenset()
        return frozenset(v for v in _VARIABLES if re.search(rf"\b{v}\.", self.expr))


_VARIABLES = ("parent", "p", "f", "w", "c", "r", "d")
# lineage variables and the SPAWNED path that binds each, relative to `p`
LINEAGE = {
    "anc": "(anc:Process)-[:SPAWNED*1..]->(p)",
    "desc": "(p)-[:SPAWNED*1..]->(desc:Process)",
}
HOST_NOTE = "host names are stored lower-case and short (WS1, not ws1.corp.example)"

# the lineage extension: the same process facts on every ancestor and every descendant
_LINEAGE_FACTS: tuple[tuple[str, str, Kind], ...] = (
    ("Image", "image", "str"),
    ("CommandLine", "command_line", "str"),
    ("User", "user", "str"),
    ("ProcessId", "pid", "int"),
)
LINEAGE_FIELDS = tuple(
    Field(f"{prefix}{name}", f"{var}.{prop}", kind=kind)
    for prefix, var in (("Ancestor", "anc"), ("Descendant", "desc"))
    for name, prop, kind in _LINEAGE_FACTS
)


def _process_fields(note: str = "") -> tuple[Field, ...]:
    """The acting process and its creator: the same nodes in every logsource."""
    return (
        Field("Image", "p.image", note=note),
        Field("CommandLine", "p.command_line", note=note),
        Field("User", "p.user", note=note),
        Field("ProcessId", "p.pid", kind="int"),
        Field("LogonId", "p.logon_id", note=note),
        Field("ParentImage", "parent.image"),
        Field("ParentCommandLine", "parent.command_line"),
        Field("ParentUser", "parent.user"),
        Field("ParentProcessId", "parent.pid", kind="int"),
        Field("Computer", "p.host", note=HOST_NOTE),
        Field("ComputerName", "p.host", note=HOST_NOTE),
        *LINEAGE_FIELDS,
        Field("IntegrityLevel", None, reason=f"IntegrityLevel: {NOT_STORED}"),
        Field("CurrentDirectory", None, reason=f"CurrentDirectory: {NO_SOURCE}"),
        Field("ProcessGuid", None, reason="process GUIDs are folded into the process uid"),
        Field("ParentProcessGuid", None, reason="process GUIDs are folded into the process uid"),
        Field("TerminalSessionId", None, reason=f"TerminalSessionId: {NO_SOURCE}"),
        Field("LogonGuid", None, reason=f"LogonGuid: {NO_SOURCE}"),
        *(
            Field(name, None, reason=PE_FACTS)
            for name in (
                "OriginalFileName",
                "Hashes",
                "Imphash",
                "md5",
                "sha1",
                "sha256",
                "Description",
                "Product",
                "Company",
                "FileVersion",
            )
        ),
    )


@dataclass(frozen=True)
class Logsource:
    """A Sigma logsource category as a graph pattern.

    `match` binds the pattern's variables and keeps only events in [$since, $until] on the
    event's own time; `optional` is joined in only when a condition or the returned columns
    read its variables; `times` is the list expression of the event times that fell in the
    window (None: one event, whose time is `time`); `returns` are the entity columns."""

    category: str
    match: str
    time: str  # the event's time (first and last seen when `times` is None)
    fields: tuple[Field, ...]
    returns: tuple[tuple[str, str], ...]  # (Cypher expression, column)
    entities: tuple[tuple[str, str, str], ...]  # (role, entity type, column)
    times: str | None = None
    summary: str = "{image} on {host}"
    always_parent: bool = False  # join the creator even when no condition needs it

    def field(self, name: str) -> Field | None:
        for row in self.fields:
            if row.sigma == name:
                return row
        return None

    @property
    def variables(self) -> frozenset[str]:
        return frozenset(v for v in _VARIABLES if re.search(rf"[(\[]{v}:", self.match))


# An aggregated edge (WROTE, CONNECTED_TO, RESOLVED) holds every distinct time of its events:
# the edge is an event in the window when one of them is (first/last bound it cheaply first).
def _timed_edge_window(edge: str) -> str:
    return (
        f"{edge}.first_time <= $until AND {edge}.last_time >= $since"
        f" AND ({edge}.last_time <= $until"
        f" OR any(t IN {edge}.times WHERE t >= $since AND t <= $until))"
    )


def _in_window(edge: str) -> str:
    """The edge's event times in the window, each once (the last time joins in when the
    capped `times` list no longer holds it): correlations count these as events."""
    return (
        f"[t IN {edge}.times WHERE t >= $since AND t <= $until]"
        f" + CASE WHEN {edge}.last_time >= $since AND {edge}.last_time <= $until"
        f" AND NOT {edge}.last_time IN {edge}.times THEN [{edge}.last_time] ELSE [] END"
    )


_ACTOR_NOTE = (
    "the acting process's command line and user are known only when its start was recorded"
)

PROCESS_CREATION = Logsource(
    category="process_creation",
    match=(
        "MATCH (p:Process)\n"
        "WHERE p.placeholder = false AND p.start_time >= $since AND p.start_time <= $until"
    ),
    time="p.start_time",
    fields=_process_fields(),
    returns=(
        ("p.uid", "process_uid"),
        ("parent.uid", "parent_uid"),
        ("p.image", "image"),
        ("p.command_line", "command_line"),
        ("parent.image", "parent_image"),
        ("p.user", "account"),
    ),
    entities=(
        ("process", "process", "process_uid"),
        ("parent", "process", "parent_uid"),
        ("account", "account", "account"),
    ),
    always_parent=True,
)

FILE_EVENT = Logsource(
    category="file_event",
    match=(
        "MATCH (p:Process)-[w:WROTE]->(f:File)\n"
        f"WHERE 'create' IN w.ops AND {_timed_edge_window('w')}"
    ),
    time="w.last_time",
    times=_in_window("w"),
    fields=(
        *_process_fields(note=_ACTOR_NOTE),
        Field("TargetFilename", "f.path"),
        Field("CreationUtcTime", None, reason=f"CreationUtcTime: {NOT_STORED}"),
    ),
    returns=(
        ("p.uid", "process_uid"),
        ("f.key", "file_key"),
        ("p.image", "image"),
        ("f.path", "target_filename"),
        ("p.user", "account"),
    ),
    entities=(
        ("process", "process", "process_uid"),
        ("file", "file", "file_key"),
        ("account", "account", "account"),
    ),
    summary="{image} created {target_filename} on {host}",
)

FILE_DELETE = Logsource(
    category="file_delete",
    match=(
        "MATCH (p:Process)-[w:WROTE]->(f:File)\n"
        f"WHERE 'delete' IN w.ops AND {_timed_edge_window('w')}"
    ),
    time="w.last_time",
    times=_in_window("w"),
    fields=(
        *_process_fields(note=_ACTOR_NOTE),
        Field("TargetFilename", "f.path"),
        Field("IsExecutable", None, reason=f"IsExecutable: {NOT_STORED}"),
    ),
    returns=FILE_EVENT.returns,
    entities=FILE_EVENT.entities,
    summary="{image} deleted {target_filename} on {host}",
)

NETWORK_CONNECTION = Logsource(
    category="network_connection",
    match=f"MATCH (p:Process)-[r:CONNECTED_TO]->(c:Connection)\nWHERE {_timed_edge_window('r')}",
    time="r.last_time",
    times=_in_window("r"),
    fields=(
        *_process_fields(note=_ACTOR_NOTE),
        Field("DestinationIp", "c.ip", ip=True, note=DIRECTION),
        Field("DestinationPort", "c.port", kind="int", note=DIRECTION),
        Field("DestinationHostname", "c.hostname", note=DIRECTION),
        Field(
            "DestinationIsIpv6",
            "CASE WHEN c.ip CONTAINS ':' THEN 'true' ELSE 'false' END",
            note=DIRECTION,
        ),
        Field("Protocol", "c.protocol"),
        Field("SourcePort", "r.local_port", kind="int", note=DIRECTION),
        Field("Initiated", None, reason=DIRECTION),
        Field("SourceIp", None, reason="the local address of a connection is not stored"),
        Field("SourceHostname", None, reason="the local host name of a connection is not stored"),
        Field("SourceIsIpv6", None, reason="the local address of a connection is not stored"),
        Field("DestinationPortName", None, reason=f"DestinationPortName: {NOT_STORED}"),
        Field("SourcePortName", None, reason=f"SourcePortName: {NOT_STORED}"),
    ),
    returns=(
        ("p.uid", "process_uid"),
        ("c.key", "connection_key"),
        ("p.image", "image"),
        ("c.ip", "remote_ip"),
        ("c.port", "remote_port"),
        ("c.hostname", "remote_hostname"),
        ("p.user", "account"),
    ),
    entities=(
        ("process", "process", "process_uid"),
        ("remote", "connection", "connection_key"),
        ("account", "account", "account"),
    ),
    summary="{image} on {host} connected to {remote_ip}:{remote_port}",
)

DNS_QUERY = Logsource(
    category="dns_query",
    match=f"MATCH (p:Process)-[r:RESOLVED]->(d:Domain)\nWHERE {_timed_edge_window('r')}",
    time="r.last_time",
    times=_in_window("r"),
    fields=(
        *_process_fields(note=_ACTOR_NOTE),
        Field("QueryName", "d.name", note="query names are stored lower-case without a final dot"),
        Field(
            "QueryResults",
            None,
            reason="answers are stored as a list of addresses, not Sysmon's result text",
        ),
        Field("QueryStatus", None, reason=f"QueryStatus: {NOT_STORED}"),
    ),
    returns=(
        ("p.uid", "process_uid"),
        ("p.image", "image"),
        ("d.name", "query_name"),
        ("p.user", "account"),
    ),
    entities=(
        ("process", "process", "process_uid"),
        ("account", "account", "account"),
    ),
    summary="{image} on {host} resolved {query_name}",
)

LOGSOURCES: dict[str, Logsource] = {
    ls.category: ls
    for ls in (PROCESS_CREATION, FILE_EVENT, FILE_DELETE, NETWORK_CONNECTION, DNS_QUERY)
}
# Sigma products whose events the graph holds (a rule for another product is not modelled).
PRODUCTS = frozenset({"windows", "linux", "macos"})

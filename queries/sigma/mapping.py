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
NOT_STORED = "ingest reads it but the graph does not store it yet"
NO_SOURCE = "no modelled source records it in the graph"


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


_VARIABLES = ("parent", "p", "f", "w", "c", "r", "d", "lport", "sb", "svc", "who", "task", "op")
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


# -- the image's PE facts (graph v2: on the File the process EXECUTED) ---------------------------
def image_fact(prop: str) -> str:
    """A property of the acting process's image File (null when the graph has none)."""
    return f"head([(p)-[:EXECUTED]->(img:File) | img.{prop}])"


# Sysmon's `Hashes` text rebuilt from the image's hash properties, in Sysmon's order and case
# (`SHA1=…,MD5=…,SHA256=…,IMPHASH=…`, upper-case hex, only the hashes the graph holds), so
# `Hashes|contains: 'IMPHASH=…'` matches whatever subset a site's Sysmon config logs.
HASH_ORDER = (("SHA1", "sha1"), ("MD5", "md5"), ("SHA256", "sha256"), ("IMPHASH", "imphash"))
HASHES = (
    "head([(p)-[:EXECUTED]->(img:File)"
    f" WHERE {' OR '.join(f'img.{prop} IS NOT NULL' for _, prop in HASH_ORDER)}"
    " | substring("
    + " + ".join(f"coalesce(',{name}=' + toUpper(img.{prop}), '')" for name, prop in HASH_ORDER)
    + ", 1)])"
)
IMAGE_NOTE = (
    "PE facts are the image file's as its newest start record told them (a binary replaced"
    " at its path shows its newest facts)"
)
IMAGE_FIELDS: tuple[Field, ...] = (
    Field("OriginalFileName", image_fact("original_name"), note="stored lower-case"),
    Field("Company", image_fact("company")),
    Field("Product", image_fact("product")),
    Field("Description", image_fact("description")),
    Field("FileVersion", image_fact("file_version")),
    Field("Hashes", HASHES, note=IMAGE_NOTE),
    Field("Imphash", image_fact("imphash")),
    Field("md5", image_fact("md5")),
    Field("sha1", image_fact("sha1")),
    Field("sha256", image_fact("sha256")),
    Field("Signed", f"toString({image_fact('signed')})"),
    Field("Signature", image_fact("signer")),
    Field("SignatureStatus", image_fact("signature_status")),
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
        *IMAGE_FIELDS,
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
    host: str = "p.host"  # the event's host
    # a logsource named by product and service (Windows event logs) rather than category:
    # the EventIDs it stands for (a rule must test EventID within them)
    service: str | None = None
    event_ids: frozenset[int] = frozenset()

    def field(self, name: str) -> Field | None:
        for row in self.fields:
            if row.sigma == name:
                return row
        return None

    @property
    def variables(self) -> frozenset[str]:
        return frozenset(
            v for v in _VARIABLES if re.search(rf"[(\[]{v}[:)\]]|\bAS {v}\b", self.match)
        )


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

# Both directions (graph v2): `CONNECTED_TO` is outbound (Sysmon `Initiated: true`: the
# destination is the remote `c`, the source port the edge's `local_port`), `ACCEPTED` inbound
# (`Initiated: false`: Sysmon's source is the peer `c`, its destination port a listening port of
# the edge's `local_ports`, one event row per port: `lport`). The local address is not stored.
_OUT = "type(r) = 'CONNECTED_TO'"
_IN = "type(r) = 'ACCEPTED'"
NET_DIRECTION = (
    "DestinationIp / DestinationHostname are the remote end of an outbound connection (null on"
    " an inbound one, whose local address is not stored)"
)
NET_SOURCE = (
    "SourceIp / SourceHostname are the peer of an inbound connection (null on an outbound one,"
    " whose local address is not stored)"
)
NETWORK_CONNECTION = Logsource(
    category="network_connection",
    match=(
        "MATCH (p:Process)-[r:CONNECTED_TO|ACCEPTED]->(c:Connection)\n"
        f"WHERE {_timed_edge_window('r')}\n"
        f"UNWIND CASE WHEN {_OUT} THEN [r.local_port]"
        " WHEN size(coalesce(r.local_ports, [])) = 0 THEN [null]"
        " ELSE r.local_ports END AS lport\n"
        "WITH p, r, c, lport\n"
        "WHERE true"
    ),
    time="r.last_time",
    times=_in_window("r"),
    fields=(
        *_process_fields(note=_ACTOR_NOTE),
        Field("DestinationIp", f"CASE WHEN {_OUT} THEN c.ip END", ip=True, note=NET_DIRECTION),
        Field("DestinationPort", f"CASE WHEN {_OUT} THEN c.port ELSE lport END", kind="int"),
        Field("DestinationHostname", f"CASE WHEN {_OUT} THEN c.hostname END", note=NET_DIRECTION),
        Field(
            "DestinationIsIpv6",
            f"CASE WHEN {_OUT} THEN CASE WHEN c.ip CONTAINS ':' THEN 'true' ELSE 'false' END END",
        ),
        Field("Protocol", "c.protocol"),
        Field("SourcePort", f"CASE WHEN {_OUT} THEN lport END", kind="int", note=NET_SOURCE),
        Field("SourceIp", f"CASE WHEN {_IN} THEN c.ip END", ip=True, note=NET_SOURCE),
        Field("SourceHostname", f"CASE WHEN {_IN} THEN c.hostname END", note=NET_SOURCE),
        Field(
            "SourceIsIpv6",
            f"CASE WHEN {_IN} THEN CASE WHEN c.ip CONTAINS ':' THEN 'true' ELSE 'false' END END",
        ),
        Field("Initiated", f"CASE WHEN {_OUT} THEN 'true' ELSE 'false' END"),
        Field("DestinationPortName", None, reason=f"DestinationPortName: {NOT_STORED}"),
        Field("SourcePortName", None, reason=f"SourcePortName: {NOT_STORED}"),
    ),
    returns=(
        ("p.uid", "process_uid"),
        ("c.key", "connection_key"),
        ("p.image", "image"),
        ("c.ip", "remote_ip"),
        (f"CASE WHEN {_OUT} THEN c.port ELSE lport END", "remote_port"),
        ("c.hostname", "remote_hostname"),
        ("p.user", "account"),
    ),
    entities=(
        ("process", "process", "process_uid"),
        ("remote", "connection", "connection_key"),
        ("account", "account", "account"),
    ),
    summary="{image} on {host}: connection with {remote_ip} (port {remote_port})",
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

# -- PowerShell script blocks (4104): the ScriptBlock, and the process that ran it if known ----
_SCRIPT_ACTOR = (
    "the PowerShell host process is known only when the record names its pid (and the graph"
    " saw it start); a script block of parts is one event with the whole text"
)
PS_SCRIPT = Logsource(
    category="ps_script",
    match=(
        "MATCH (sb:ScriptBlock)\n"
        "WHERE sb.first_time >= $since AND sb.first_time <= $until\n"
        "OPTIONAL MATCH (p:Process)-[:RAN_SCRIPT]->(sb)\n"
        "WITH sb, p\n"
        "WHERE true"
    ),
    time="sb.first_time",
    host="sb.host",
    fields=(
        *(
            row
            for row in _process_fields(note=_SCRIPT_ACTOR)
            if row.sigma not in ("Computer", "ComputerName")
        ),
        Field("ScriptBlockText", "sb.text", note="the reassembled text of all parts seen"),
        Field("Path", "sb.path"),
        Field("ScriptBlockId", "sb.script_block_id", note="stored lower-case, without braces"),
        Field("Computer", "sb.host", note=HOST_NOTE),
        Field("ComputerName", "sb.host", note=HOST_NOTE),
        Field("EventID", "4104", kind="int"),
        Field("MessageNumber", None, reason="parts are reassembled into one script block"),
        Field("MessageTotal", None, reason="parts are reassembled into one script block"),
    ),
    returns=(
        ("p.uid", "process_uid"),
        ("sb.key", "script_key"),
        ("p.image", "image"),
        ("sb.path", "script_path"),
        ("p.user", "account"),
    ),
    entities=(
        ("script", "value", "script_key"),
        ("process", "process", "process_uid"),
        ("account", "account", "account"),
    ),
    summary="PowerShell script block {script_key} on {host}",
)


# -- Windows system changes by an account or logon session (graph v2, part 2) -----------------
def _installer(prop: str) -> str:
    """The installing account's property: the Account itself, or the one a Logon belongs to."""
    return (
        f"CASE WHEN who:Account THEN who.{prop}"
        f" ELSE head([(a:Account)-[:LOGGED_ON]->(who) | a.{prop}]) END"
    )


_SUBJECT = (
    Field("SubjectUserName", _installer("name")),
    Field("SubjectDomainName", _installer("domain")),
    Field("SubjectUserSid", _installer("sid")),
    Field("SubjectLogonId", "CASE WHEN who:Logon THEN who.logon_id END"),
)
_SERVICE_NOTE = (
    "the service's facts as first recorded (7045 and 4697 alike: an install either logs is"
    " one fact; their value spellings differ, e.g. ServiceType 'user mode service' vs '0x10')"
)
_SERVICE_MATCH = (
    f"MATCH (who)-[r:INSTALLED_SERVICE]->(svc:Service)\nWHERE {_timed_edge_window('r')}"
)
_SERVICE_RETURNS = (
    ("svc.key", "service_key"),
    ("svc.service_name", "service_name"),
    ("svc.image_path", "image_path"),
    (_installer("name"), "installer"),
)
_SERVICE_ENTITIES = (("service", "value", "service_key"), ("host", "host", "host"))
_SERVICE_COMMON = (
    Field("ServiceName", "svc.service_name"),
    Field("ServiceType", "svc.service_type", note=_SERVICE_NOTE),
    Field("Computer", "svc.host", note=HOST_NOTE),
    Field("ComputerName", "svc.host", note=HOST_NOTE),
)
SERVICE_7045 = Logsource(
    category="system_7045",
    service="system",
    event_ids=frozenset({7045}),
    match=_SERVICE_MATCH,
    time="r.last_time",
    times=_in_window("r"),
    host="svc.host",
    fields=(
        *_SERVICE_COMMON,
        Field("EventID", "7045", kind="int"),
        Field("Provider_Name", "'Service Control Manager'"),
        Field("Channel", "'System'"),
        Field("ImagePath", "svc.image_path", note=_SERVICE_NOTE),
        Field("StartType", "svc.start_type", note=_SERVICE_NOTE),
        Field("AccountName", "svc.service_account"),
    ),
    returns=_SERVICE_RETURNS,
    entities=_SERVICE_ENTITIES,
    summary="service {service_name} installed on {host}: {image_path}",
)
SERVICE_4697 = Logsource(
    category="security_4697",
    service="security",
    event_ids=frozenset({4697}),
    match=_SERVICE_MATCH,
    time="r.last_time",
    times=_in_window("r"),
    host="svc.host",
    fields=(
        *_SERVICE_COMMON,
        *_SUBJECT,
        Field("EventID", "4697", kind="int"),
        Field("Channel", "'Security'"),
        Field("ServiceFileName", "svc.image_path", note=_SERVICE_NOTE),
        Field("ServiceStartType", "svc.start_type", note=_SERVICE_NOTE),
        Field("ServiceAccount", "svc.service_account"),
    ),
    returns=_SERVICE_RETURNS,
    entities=_SERVICE_ENTITIES,
    summary="service {service_name} installed on {host}: {image_path}",
)


# Security 4698-4702: a CHANGED_TASK edge from the Logon, Account or client process that made
# the change, one event row per op it holds (`op`, its EventID by TASK_OPS).
TASK_OPS = {4698: "created", 4699: "deleted", 4700: "enabled", 4701: "disabled", 4702: "updated"}
_TASK_EVENT_ID = (
    "CASE op " + " ".join(f"WHEN '{op}' THEN {i}" for i, op in TASK_OPS.items()) + " END"
)
_TASK_CONTENT = "the task's newest recorded content (a later update replaces it)"
SECURITY_TASK = Logsource(
    category="security_task",
    service="security",
    event_ids=frozenset(TASK_OPS),
    match=(
        "MATCH (who)-[r:CHANGED_TASK]->(task:ScheduledTask)\n"
        f"WHERE {_timed_edge_window('r')}\n"
        "UNWIND r.ops AS op\n"
        "WITH who, r, task, op\n"
        "WHERE true"
    ),
    time="r.last_time",
    times=_in_window("r"),
    host="task.host",
    fields=(
        *_SUBJECT,
        Field(
            "EventID",
            _TASK_EVENT_ID,
            kind="int",
            note="an edge's times are those of all its changes (one edge per actor and task)",
        ),
        Field("Channel", "'Security'"),
        Field("TaskName", "task.task_name"),
        Field("TaskContent", "task.content", note=_TASK_CONTENT),
        Field("TaskContentNew", "task.content", note=_TASK_CONTENT),
        Field("Computer", "task.host", note=HOST_NOTE),
        Field("ComputerName", "task.host", note=HOST_NOTE),
    ),
    returns=(
        ("task.key", "task_key"),
        ("task.task_name", "task_name"),
        ("op", "task_op"),
        (_installer("name"), "account"),
    ),
    entities=(("task", "value", "task_key"), ("host", "host", "host")),
    summary="scheduled task {task_name} {task_op} on {host}",
)


LOGSOURCES: dict[str, Logsource] = {
    ls.category: ls
    for ls in (
        PROCESS_CREATION,
        FILE_EVENT,
        FILE_DELETE,
        NETWORK_CONNECTION,
        DNS_QUERY,
        PS_SCRIPT,
        SERVICE_7045,
        SERVICE_4697,
        SECURITY_TASK,
    )
}
# Logsources Sigma names by category, and those by (service, EventID)
BY_CATEGORY = frozenset(ls.category for ls in LOGSOURCES.values() if ls.service is None)
BY_EVENT_ID: dict[tuple[str, int], str] = {
    (ls.service, event_id): ls.category
    for ls in LOGSOURCES.values()
    if ls.service is not None
    for event_id in ls.event_ids
}
# Sigma products whose events the graph holds (a rule for another product is not modelled).
PRODUCTS = frozenset({"windows", "linux", "macos"})

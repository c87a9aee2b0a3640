"""Sigma logsources and fields onto today's provenance graph, as data.

Each modelled logsource is a graph pattern (`Logsource`) and a table of field rows (`Field`):
a Sigma field name, the Cypher expression over the pattern's variables that holds it, and its
kind. A row without an expression names a field the graph does not hold yet, with the reason;
a rule that uses it fails to compile with that reason, it is never dropped from a condition.
Graph v2 (issue 14) adds facts by adding rows here (or filling in an expression).

Pattern variables: `p` the acting process (for process_creation: the new process), `parent`
its creator (through SPAWNED), `f` a File, `w` a WROTE edge, `c` a Connection, `r` a
CONNECTED_TO or RESOLVED edge, `d` a Domain; on the k1 kinds `r` is the aggregated edge, `rk` a
RegistryKey, `tgt` a target process, `pipe` a Pipe, `wmi` a WmiObject (`src` its Host or
filter), `hst` a driver-loading Host, and `op`, `val`, `ga`, `ct`, `sa`, `sm`, `sf`, `typ`, `wop`,
`wu` one value of the edge's lists per event row. Expressions are code constants, never input.

Lineage (provgraph's extension of Sigma, on every logsource): `Ancestor<Field>` is a process
anywhere above `p` through SPAWNED (`anc`), `Descendant<Field>` one anywhere below it (`desc`).
The backend turns every condition on them into an `EXISTS { … }` over a variable-length SPAWNED
path; these variables are never part of a logsource's pattern.
"""

from __future__ import annotations

import dataclasses
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


_VARIABLES = (
    "parent",
    "p",
    "f",
    "w",
    "c",
    "r",
    "d",
    "lport",
    "sb",
    "svc",
    "who",
    "task",
    "op",
    # graph v2, k1: a registry key, a target process, a pipe, a WMI object and its start, the
    # driver-loading host, and one value of an edge's value lists per event row
    "rk",
    "tgt",
    "pipe",
    "wmi",
    "src",
    "hst",
    "val",
    "ga",
    "ct",
    "sa",
    "sm",
    "sf",
    "typ",
    "wop",
    "wu",
    # logons: the account, its Logon, a failed logon's host, and one value of the edge's lists
    "acct",
    "lg",
    "fh",
    "st",
    "sst",
    "lt",
    "sip",
    "ts",
    "ti",
    "sn",
    # one text of a WROTE edge's stream contents (Sysmon 15)
    "sc",
)
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


INTEGRITY_NOTE = (
    "stored in Sysmon's words (Low, Medium, High, System): Security 4688's MandatoryLabel SID"
    " and Defender's and Elastic's spellings are rewritten to them, so a SID value"
    " (S-1-16-12288) matches nothing"
)
CURRENT_DIRECTORY_NOTE = (
    "known from Sysmon 1 and Elastic process.working_directory (Security 4688 and Defender"
    " do not log it)"
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
        # the creator's creator, as EDR sources name it (Sysmon logs no such field)
        Field(
            "GrandParentImage",
            "head([(gp:Process)-[:SPAWNED]->(:Process)-[:SPAWNED]->(p) | gp.image])",
        ),
        Field("Computer", "p.host", note=HOST_NOTE),
        Field("ComputerName", "p.host", note=HOST_NOTE),
        *LINEAGE_FIELDS,
        Field("IntegrityLevel", "p.integrity_level", note=INTEGRITY_NOTE),
        Field("CurrentDirectory", "p.current_directory", note=CURRENT_DIRECTORY_NOTE),
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


# -- what a process does to the system (graph v2, k1) -------------------------------------------
# These edges are aggregated, one per actor and target (see graph.writer K1_TIMED): their value
# lists (`details`, `granted_access`, …) hold the distinct values of all the edge's events, up
# to 16 each, cut at 1,024 characters. An event row is one value of each list (`UNWIND`; an
# empty list is one row with a null value), so an edge of one event is exactly that event, and
# on an edge of several a row may pair one event's value with another's (said on every rule).
def _values(prop: str, edge: str = "r") -> str:
    """An edge's value list as event rows: the values, or one null when it has none."""
    return f"CASE WHEN size(coalesce({edge}.{prop}, [])) = 0 THEN [null] ELSE {edge}.{prop} END"


def _edge_match(pattern: str, where: str, unwinds: tuple[tuple[str, str], ...] = ()) -> str:
    """MATCH `pattern` in the window (and `where`), one row per value of each unwound list."""
    lines = [
        f"MATCH {pattern}",
        f"WHERE {where + ' AND ' if where else ''}{_timed_edge_window('r')}",
    ]
    if not unwinds:
        return "\n".join(lines)
    bound = re.findall(r"[(\[](\w+)[:)\]]", pattern)
    for variable, expr in unwinds:
        lines.append(f"UNWIND {expr} AS {variable}")
        bound.append(variable)
    lines += [f"WITH {', '.join(bound)}", "WHERE true"]
    return "\n".join(lines)


LIST_NOTE = (
    "an edge (one per actor and target) holds the distinct values of all its events (up to 16,"
    " each cut at 1,024 characters): a row is one of each, so on an edge of several events a"
    " rule may pair values of different events; the row's times are the edge's"
)


def file_facts(var: str) -> tuple[Field, ...]:
    """The PE facts of a File `var` (a loaded module or driver), under Sysmon's names."""
    hashes = (
        f"CASE WHEN {' OR '.join(f'{var}.{prop} IS NOT NULL' for _, prop in HASH_ORDER)}"
        " THEN substring("
        + " + ".join(
            f"coalesce(',{name}=' + toUpper({var}.{prop}), '')" for name, prop in HASH_ORDER
        )
        + ", 1) END"
    )
    note = "the file's PE facts as its newest record with them told them"
    return (
        Field("OriginalFileName", f"{var}.original_name", note="stored lower-case"),
        Field("Company", f"{var}.company"),
        Field("Product", f"{var}.product"),
        Field("Description", f"{var}.description"),
        Field("FileVersion", f"{var}.file_version"),
        Field("Hashes", hashes, note=note),
        Field("Imphash", f"{var}.imphash"),
        Field("md5", f"{var}.md5"),
        Field("sha1", f"{var}.sha1"),
        Field("sha256", f"{var}.sha256"),
        Field("Signed", f"toString({var}.signed)", note=note),
        Field("Signature", f"{var}.signer", note=note),
        Field("SignatureStatus", f"{var}.signature_status", note=note),
    )


_PROCESS_RETURNS = (("p.uid", "process_uid"), ("p.image", "image"))
_ACTOR_ENTITIES = (("process", "process", "process_uid"), ("account", "account", "account"))

# -- logons (Security 4624, 4625, 4648; Defender and Elastic logons alike) ----------------------
# A successful logon is its Logon session (the account LOGGED_ON it, its facts as first
# recorded), a failed one an account's FAILED_LOGON edge to the host (its statuses, types and
# addresses as value lists), explicit credentials a process's USED_CREDENTIALS edge to the
# account whose credentials it used. Windows writes "-" for a fact it has no value for; the
# graph stores nothing, and these fields read "-" again, so a rule's `IpAddress: '-'` filter
# keeps its meaning.
_DASH_NOTE = "read as Windows logs a missing value: '-' (Defender and Elastic logons alike)"


def _dash_of(expr: str) -> str:
    return f"coalesce({expr}, '-')"


_TARGET_ACCOUNT = (
    Field("TargetUserName", "acct.name"),
    Field("TargetDomainName", "acct.domain"),
    Field("TargetUserSid", "acct.sid", note="stored lower-case"),
)
_ACCOUNT_ENTITY = ("account", "account", "account_key")
# the account as a person reads it (DOMAIN\\name), and its node's key for the entity
_ACCOUNT_RETURNS = (
    ("acct.key", "account_key"),
    ("coalesce(acct.domain + '\\\\' + acct.name, acct.name, acct.sid)", "account"),
)
_NO_SUBJECT = "the account that asked for the logon: only its SID is stored (SubjectUserSid)"
SECURITY_LOGON = Logsource(
    category="security_logon",
    service="security",
    event_ids=frozenset({4624}),
    match=(
        "MATCH (acct:Account)-[r:LOGGED_ON]->(lg:Logon)\n"
        "WHERE lg.start_time >= $since AND lg.start_time <= $until"
    ),
    time="lg.start_time",
    host="lg.host",
    fields=(
        *_TARGET_ACCOUNT,
        Field("EventID", "4624", kind="int"),
        Field("Channel", "'Security'"),
        Field("TargetLogonId", "lg.logon_id", note="lower-case hex, as 0x3e7"),
        Field("LogonType", "lg.logon_type", kind="int"),
        Field("IpAddress", _dash_of("lg.source_ip"), ip=True, note=_DASH_NOTE),
        Field(
            "IpPort",
            "coalesce(lg.source_port, 0)",
            kind="int",
            note="a logon with no source port (Windows '-' or 0) reads 0",
        ),
        Field("WorkstationName", _dash_of("lg.workstation"), note=_DASH_NOTE),
        Field("AuthenticationPackageName", _dash_of("lg.auth_package"), note=_DASH_NOTE),
        Field("LogonProcessName", _dash_of("lg.logon_process"), note="trailing blanks trimmed"),
        Field("LogonGuid", "lg.logon_guid"),
        Field("ProcessName", _dash_of("lg.process_name"), note=_DASH_NOTE),
        Field("KeyLength", "lg.key_length", kind="int"),
        Field("ImpersonationLevel", _dash_of("lg.impersonation_level"), note=_DASH_NOTE),
        Field("TargetOutboundUserName", _dash_of("lg.outbound_user"), note=_DASH_NOTE),
        Field("SubjectUserSid", "lg.subject_sid", note="stored lower-case"),
        Field("SubjectUserName", None, reason=_NO_SUBJECT),
        Field("SubjectDomainName", None, reason=_NO_SUBJECT),
        Field("SubjectLogonId", None, reason=_NO_SUBJECT),
        Field("Computer", "lg.host", note=HOST_NOTE),
        Field("ComputerName", "lg.host", note=HOST_NOTE),
    ),
    returns=(
        ("lg.key", "logon_key"),
        *_ACCOUNT_RETURNS,
        ("lg.logon_type", "logon_type"),
        ("lg.source_ip", "source_ip"),
    ),
    entities=(("logon", "value", "logon_key"), ("host", "host", "host"), _ACCOUNT_ENTITY),
    summary="logon of {account} (type {logon_type}) on {host}",
)
SECURITY_FAILED_LOGON = Logsource(
    category="security_failed_logon",
    service="security",
    event_ids=frozenset({4625}),
    match=_edge_match(
        "(acct:Account)-[r:FAILED_LOGON]->(fh:Host)",
        "",
        (
            ("st", _values("statuses")),
            ("sst", _values("sub_statuses")),
            ("lt", _values("logon_types")),
            ("sip", _values("source_ips")),
        ),
    ),
    time="r.last_time",
    times=_in_window("r"),
    host="fh.name",
    fields=(
        *_TARGET_ACCOUNT,
        Field("EventID", "4625", kind="int"),
        Field("Channel", "'Security'"),
        Field("Status", "st", note=f"lower-case hex; {LIST_NOTE}"),
        Field("SubStatus", "sst", note=f"lower-case hex; {LIST_NOTE}"),
        Field("LogonType", "lt", kind="int", note=LIST_NOTE),
        Field("IpAddress", _dash_of("sip"), ip=True, note=f"{_DASH_NOTE}; {LIST_NOTE}"),
        Field("Computer", "fh.name", note=HOST_NOTE),
        Field("ComputerName", "fh.name", note=HOST_NOTE),
        *(
            Field(name, None, reason=f"a failed logon's {name}: {NOT_STORED}")
            for name in (
                "WorkstationName",
                "AuthenticationPackageName",
                "LogonProcessName",
                "ProcessName",
                "SubjectUserSid",
                "SubjectUserName",
                "IpPort",
            )
        ),
    ),
    returns=(
        *_ACCOUNT_RETURNS,
        ("st", "status"),
        ("sip", "source_ip"),
    ),
    entities=(("target", "value", "account_key"), ("host", "host", "host"), _ACCOUNT_ENTITY),
    summary="failed logon of {account} on {host} (status {status})",
)
SECURITY_EXPLICIT_CREDENTIALS = Logsource(
    category="security_explicit_credentials",
    service="security",
    event_ids=frozenset({4648}),
    match=_edge_match(
        "(p:Process)-[r:USED_CREDENTIALS]->(acct:Account)",
        "",
        (
            ("ts", _values("target_servers")),
            ("ti", _values("target_infos")),
            ("sn", _values("subject_names")),
            ("sip", _values("source_ips")),
        ),
    ),
    time="r.last_time",
    times=_in_window("r"),
    fields=(
        Field("TargetUserName", "acct.name"),
        Field("TargetDomainName", "acct.domain"),
        Field("EventID", "4648", kind="int"),
        Field("Channel", "'Security'"),
        Field("ProcessName", "p.image"),
        Field("ProcessId", "p.pid", kind="int"),
        Field("TargetServerName", "ts", note=LIST_NOTE),
        Field("TargetInfo", "ti", note=LIST_NOTE),
        Field("SubjectUserName", "sn", note=LIST_NOTE),
        Field("IpAddress", _dash_of("sip"), ip=True, note=f"{_DASH_NOTE}; {LIST_NOTE}"),
        Field("Computer", "p.host", note=HOST_NOTE),
        Field("ComputerName", "p.host", note=HOST_NOTE),
        *LINEAGE_FIELDS,
    ),
    returns=(
        *_PROCESS_RETURNS,
        *_ACCOUNT_RETURNS,
        ("ts", "target_server"),
    ),
    entities=(("process", "process", "process_uid"), ("host", "host", "host"), _ACCOUNT_ENTITY),
    summary="{image} used the credentials of {account} on {host} (target {target_server})",
)

# -- registry (Sysmon 12/13/14, Security 4656/4657/4663, Defender, Elastic) --------------------
# One row per op of the edge (a `set_value` row per value written, a `rename` row per new
# name); EventType and EventID are Sysmon's for the op. `modify` (Security: an ACL or owner
# change) is no Sysmon registry event, `create_or_delete` a Sysmon 12 whose EventType the
# shipper dropped: it is both an add and a delete, with a null EventType.
_DELETE_VALUE = ("deletevalue", "registryvaluedeleted", "4657")
REGISTRY_EVENT_TYPE = (
    "CASE op WHEN 'set_value' THEN 'SetValue' WHEN 'rename' THEN 'RenameKey'"
    " WHEN 'create' THEN 'CreateKey'"
    " WHEN 'delete' THEN CASE WHEN any(x IN coalesce(r.event_types, [])"
    f" WHERE toLower(x) IN {list(_DELETE_VALUE)}) THEN 'DeleteValue' ELSE 'DeleteKey' END END"
)
DETAILS_NOTE = (
    "the value in Sysmon's form (DWORD (0x00000001), QWORD (0x…-0x…), Binary Data, (Empty), a"
    " string as written): Security 4657, Defender and Elastic data are rewritten into it from"
    " their value type"
)
TARGET_OBJECT_NOTE = (
    "the hive as Sysmon spells it (HKLM, HKU, HKCR): Security's \\REGISTRY\\MACHINE and"
    " Defender's HKEY_* are rewritten; a Security 4656/4663 names the key, not the value"
)


def _registry(category: str, ops: tuple[str, ...], summary: str) -> Logsource:
    match = _edge_match(
        "(p:Process)-[r:WROTE_REGISTRY]->(rk:RegistryKey)",
        f"any(o IN r.ops WHERE o IN {list(ops)})",
        (
            ("op", f"[o IN r.ops WHERE o IN {list(ops)}]"),
            (
                "val",
                f"CASE op WHEN 'set_value' THEN {_values('details')}"
                f" WHEN 'rename' THEN {_values('new_names')} ELSE [null] END",
            ),
        ),
    )
    return Logsource(
        category=category,
        match=match,
        time="r.last_time",
        times=_in_window("r"),
        fields=(
            *_process_fields(note=_ACTOR_NOTE),
            Field("TargetObject", "rk.path", note=TARGET_OBJECT_NOTE),
            Field("Details", "CASE WHEN op = 'set_value' THEN val END", note=DETAILS_NOTE),
            Field("NewName", "CASE WHEN op = 'rename' THEN val END"),
            Field("EventType", REGISTRY_EVENT_TYPE, note=LIST_NOTE),
            Field(
                "EventID",
                "CASE op WHEN 'set_value' THEN 13 WHEN 'rename' THEN 14 ELSE 12 END",
                kind="int",
            ),
        ),
        returns=(
            *_PROCESS_RETURNS,
            ("rk.key", "registry_key"),
            ("rk.path", "target_object"),
            ("op", "registry_op"),
            ("p.user", "account"),
        ),
        entities=(
            ("process", "process", "process_uid"),
            ("registry", "value", "registry_key"),
            ("account", "account", "account"),
        ),
        summary=summary,
    )


REGISTRY_SET = _registry("registry_set", ("set_value",), "{image} set {target_object} on {host}")
REGISTRY_ADD = _registry(
    "registry_add", ("create", "create_or_delete"), "{image} created {target_object} on {host}"
)
REGISTRY_DELETE = _registry(
    "registry_delete", ("delete", "create_or_delete"), "{image} deleted {target_object} on {host}"
)
REGISTRY_RENAME = _registry(
    "registry_rename", ("rename",), "{image} renamed {target_object} on {host}"
)
REGISTRY_EVENT = _registry(
    "registry_event",
    ("create", "delete", "set_value", "rename", "create_or_delete"),
    "{image} changed {target_object} ({registry_op}) on {host}",
)

# -- module and driver loads (Sysmon 7 and 6, Defender, Elastic) -------------------------------
_NOT_IMAGE = {f.sigma for f in IMAGE_FIELDS}
IMAGE_LOAD = Logsource(
    category="image_load",
    match=_edge_match("(p:Process)-[r:LOADED]->(f:File)", ""),
    time="r.last_time",
    times=_in_window("r"),
    fields=(
        # Sysmon 7's PE fields are the loaded module's, not the process image's
        *(row for row in _process_fields(note=_ACTOR_NOTE) if row.sigma not in _NOT_IMAGE),
        Field("ImageLoaded", "f.path"),
        *file_facts("f"),
    ),
    returns=(
        *_PROCESS_RETURNS,
        ("f.key", "file_key"),
        ("f.path", "image_loaded"),
        ("p.user", "account"),
    ),
    entities=(
        ("process", "process", "process_uid"),
        ("module", "file", "file_key"),
        ("account", "account", "account"),
    ),
    summary="{image} loaded {image_loaded} on {host}",
)
DRIVER_LOAD = Logsource(
    category="driver_load",
    match=_edge_match("(hst:Host)-[r:LOADED_DRIVER]->(f:File)", ""),
    time="r.last_time",
    times=_in_window("r"),
    host="hst.name",
    fields=(
        Field("ImageLoaded", "f.path"),
        *file_facts("f"),
        Field("Computer", "hst.name", note=HOST_NOTE),
        Field("ComputerName", "hst.name", note=HOST_NOTE),
    ),
    returns=(("f.key", "file_key"), ("f.path", "image_loaded")),
    entities=(("driver", "file", "file_key"), ("host", "host", "host")),
    summary="driver {image_loaded} loaded on {host}",
)


# -- one process on another (Sysmon 10 and 8, Defender) ----------------------------------------
def _source_target_fields(extra: tuple[Field, ...]) -> tuple[Field, ...]:
    """Sysmon 8/10's names for the acting process `p`, its creator and the target `tgt`."""
    return (
        Field("SourceImage", "p.image", note=_ACTOR_NOTE),
        Field("SourceProcessId", "p.pid", kind="int"),
        Field("SourceUser", "p.user", note=_ACTOR_NOTE),
        Field("SourceCommandLine", "p.command_line", note=_ACTOR_NOTE),
        Field("SourceParentImage", "parent.image"),
        Field("SourceParentProcessId", "parent.pid", kind="int"),
        Field("TargetImage", "tgt.image", note=_ACTOR_NOTE),
        Field("TargetProcessId", "tgt.pid", kind="int"),
        Field("TargetUser", "tgt.user", note=_ACTOR_NOTE),
        Field("TargetCommandLine", "tgt.command_line", note=_ACTOR_NOTE),
        Field("TargetParentImage", "head([(tp:Process)-[:SPAWNED]->(tgt) | tp.image])"),
        Field("TargetParentProcessId", "tgt.ppid", kind="int"),
        Field("Computer", "p.host", note=HOST_NOTE),
        Field("ComputerName", "p.host", note=HOST_NOTE),
        Field("SourceProcessGUID", None, reason="process GUIDs are folded into the process uid"),
        Field("SourceProcessGuid", None, reason="process GUIDs are folded into the process uid"),
        Field("TargetProcessGUID", None, reason="process GUIDs are folded into the process uid"),
        Field("TargetProcessGuid", None, reason="process GUIDs are folded into the process uid"),
        Field("SourceThreadId", None, reason=f"SourceThreadId: {NOT_STORED}"),
        *LINEAGE_FIELDS,
        *extra,
    )


_SOURCE_TARGET_RETURNS = (
    ("p.uid", "process_uid"),
    ("tgt.uid", "target_uid"),
    ("p.image", "source_image"),
    ("tgt.image", "target_image"),
)
_SOURCE_TARGET_ENTITIES = (
    ("process", "process", "process_uid"),
    ("target", "process", "target_uid"),
    ("account", "account", "account"),
)
PROCESS_ACCESS = Logsource(
    category="process_access",
    match=_edge_match(
        "(p:Process)-[r:ACCESSED]->(tgt:Process)",
        "",
        (("ga", _values("granted_access")), ("ct", _values("call_trace"))),
    ),
    time="r.last_time",
    times=_in_window("r"),
    fields=_source_target_fields(
        (
            Field(
                "GrantedAccess",
                "ga",
                note="lower-case hex without leading zeros (0x1fffff); " + LIST_NOTE,
            ),
            Field("CallTrace", "ct", note=LIST_NOTE),
        )
    ),
    returns=(*_SOURCE_TARGET_RETURNS, ("ga", "granted_access"), ("p.user", "account")),
    entities=_SOURCE_TARGET_ENTITIES,
    summary="{source_image} opened {target_image} ({granted_access}) on {host}",
)
CREATE_REMOTE_THREAD = Logsource(
    category="create_remote_thread",
    match=_edge_match(
        "(p:Process)-[r:INJECTED]->(tgt:Process)",
        "",
        (
            ("sa", _values("start_address")),
            ("sm", _values("start_module")),
            ("sf", _values("start_function")),
        ),
    ),
    time="r.last_time",
    times=_in_window("r"),
    fields=_source_target_fields(
        (
            Field(
                "StartAddress",
                "sa",
                note="lower-case hex without leading zeros; " + LIST_NOTE,
            ),
            Field("StartModule", "sm", note=LIST_NOTE),
            Field("StartFunction", "sf", note=LIST_NOTE),
            Field("NewThreadId", None, reason=f"NewThreadId: {NOT_STORED}"),
        )
    ),
    returns=(*_SOURCE_TARGET_RETURNS, ("p.user", "account")),
    entities=_SOURCE_TARGET_ENTITIES,
    summary="{source_image} started a thread in {target_image} on {host}",
)

# -- raw reads, tampering, pipes, clipboard (Sysmon 9, 25, 17/18, 24) -------------------------
RAW_ACCESS_THREAD = Logsource(
    category="raw_access_thread",
    match=_edge_match("(p:Process)-[r:READ_RAW]->(f:File)", ""),
    time="r.last_time",
    times=_in_window("r"),
    fields=(*_process_fields(note=_ACTOR_NOTE), Field("Device", "f.path")),
    returns=(*_PROCESS_RETURNS, ("f.key", "file_key"), ("f.path", "device"), ("p.user", "account")),
    entities=(*_ACTOR_ENTITIES[:1], ("device", "file", "file_key"), _ACTOR_ENTITIES[1]),
    summary="{image} read {device} raw on {host}",
)
PROCESS_TAMPERING = Logsource(
    category="process_tampering",
    match=_edge_match("(p:Process)-[r:TAMPERED]->(f:File)", "", (("typ", _values("types")),)),
    time="r.last_time",
    times=_in_window("r"),
    fields=(*_process_fields(note=_ACTOR_NOTE), Field("Type", "typ", note=LIST_NOTE)),
    returns=(*_PROCESS_RETURNS, ("typ", "tamper_type"), ("p.user", "account")),
    entities=_ACTOR_ENTITIES,
    summary="{image} tampered with ({tamper_type}) on {host}",
)
PIPE_CREATED = Logsource(
    category="pipe_created",
    match=_edge_match("(p:Process)-[r:CREATED_PIPE|CONNECTED_PIPE]->(pipe:Pipe)", ""),
    time="r.last_time",
    times=_in_window("r"),
    fields=(
        *_process_fields(note=_ACTOR_NOTE),
        Field("PipeName", "pipe.name", note="as the first record of the pipe spelt it"),
        Field(
            "EventType",
            "CASE type(r) WHEN 'CREATED_PIPE' THEN 'CreatePipe' ELSE 'ConnectPipe' END",
        ),
        Field("EventID", "CASE type(r) WHEN 'CREATED_PIPE' THEN 17 ELSE 18 END", kind="int"),
    ),
    returns=(
        *_PROCESS_RETURNS,
        ("pipe.key", "pipe_key"),
        ("pipe.name", "pipe_name"),
        ("p.user", "account"),
    ),
    entities=(
        ("process", "process", "process_uid"),
        ("pipe", "value", "pipe_key"),
        ("account", "account", "account"),
    ),
    summary="{image} opened pipe {pipe_name} on {host}",
)
CLIPBOARD_CHANGE = Logsource(
    category="clipboard_change",
    match=_edge_match(
        "(p:Process)-[r:SET_CLIPBOARD]->(hst:Host)", "", (("val", _values("hashes")),)
    ),
    time="r.last_time",
    times=_in_window("r"),
    fields=(*_process_fields(note=_ACTOR_NOTE), Field("Hashes", "val", note=LIST_NOTE)),
    returns=(*_PROCESS_RETURNS, ("p.user", "account")),
    entities=_ACTOR_ENTITIES,
    summary="{image} changed the clipboard on {host}",
)

# -- WMI event subscriptions (Sysmon 19/20/21): logged for no process ---------------------------
_BINDING = "type(r) = 'BOUND_TO'"
_FILTER = f"NOT {_BINDING} AND wmi.kind = 'filter'"
_CONSUMER = f"NOT {_BINDING} AND wmi.kind = 'consumer'"
_UNQUOTED = "stored without the quotes Sysmon puts around it"
WMI_EVENT = Logsource(
    category="wmi_event",
    match=_edge_match(
        "(src)-[r:REGISTERED_WMI|BOUND_TO]->(wmi:WmiObject)",
        "",
        (("wop", _values("operations")), ("wu", _values("users"))),
    ),
    time="r.last_time",
    times=_in_window("r"),
    host="wmi.host",
    fields=(
        Field(
            "EventID",
            f"CASE WHEN {_BINDING} THEN 21 WHEN wmi.kind = 'filter' THEN 19 ELSE 20 END",
            kind="int",
        ),
        Field(
            "EventType",
            f"CASE WHEN {_BINDING} THEN 'WmiBindingEvent' WHEN wmi.kind = 'filter'"
            " THEN 'WmiFilterEvent' ELSE 'WmiConsumerEvent' END",
        ),
        Field("Operation", "wop", note=LIST_NOTE),
        Field("User", "wu", note=LIST_NOTE),
        Field("Name", f"CASE WHEN NOT {_BINDING} THEN wmi.name END", note=_UNQUOTED),
        Field("EventNamespace", f"CASE WHEN {_FILTER} THEN wmi.namespace END", note=_UNQUOTED),
        Field("Query", f"CASE WHEN {_FILTER} THEN wmi.query END", note=_UNQUOTED),
        Field("Type", f"CASE WHEN {_CONSUMER} THEN wmi.consumer_type END"),
        Field("Destination", f"CASE WHEN {_CONSUMER} THEN wmi.destination END", note=_UNQUOTED),
        Field(
            "Consumer",
            None,
            reason="a binding's consumer is stored by name, not as Sysmon's WMI object path",
        ),
        Field(
            "Filter",
            None,
            reason="a binding's filter is stored by name, not as Sysmon's WMI object path",
        ),
        Field("Computer", "wmi.host", note=HOST_NOTE),
        Field("ComputerName", "wmi.host", note=HOST_NOTE),
    ),
    returns=(("wmi.key", "wmi_key"), ("wmi.kind", "wmi_kind"), ("wmi.name", "wmi_name")),
    entities=(("wmi", "value", "wmi_key"), ("host", "host", "host")),
    summary="WMI {wmi_kind} {wmi_name} on {host}",
)


# -- the other Sysmon file events, kept as WROTE ops (2, 15, 27, 28, 29; Defender renames) ----
def _file_op(category: str, op: str, summary: str, extra: tuple[Field, ...] = ()) -> Logsource:
    return Logsource(
        category=category,
        match=(
            "MATCH (p:Process)-[w:WROTE]->(f:File)\n"
            f"WHERE '{op}' IN w.ops AND {_timed_edge_window('w')}"
        ),
        time="w.last_time",
        times=_in_window("w"),
        fields=(*_process_fields(note=_ACTOR_NOTE), Field("TargetFilename", "f.path"), *extra),
        returns=FILE_EVENT.returns,
        entities=FILE_EVENT.entities,
        summary=summary,
    )


_STREAM_HASH = file_facts("f")[5]
CREATE_STREAM_HASH = dataclasses.replace(
    _file_op(
        "create_stream_hash",
        "stream",
        "{image} created stream {target_filename} on {host}",
        (
            Field("Hash", _STREAM_HASH.expr, note="the stream's hashes, in Sysmon's form"),
            Field(
                "Contents",
                "sc",
                note="the stream texts of the edge (one per row, up to 16, each cut at 1,024"
                " characters): a row may pair one event's text with another's hashes",
            ),
        ),
    ),
    match=(
        "MATCH (p:Process)-[w:WROTE]->(f:File)\n"
        f"WHERE 'stream' IN w.ops AND {_timed_edge_window('w')}\n"
        f"UNWIND {_values('contents', 'w')} AS sc\n"
        "WITH p, w, f, sc\n"
        "WHERE true"
    ),
)
FILE_CHANGE = _file_op(
    "file_change",
    "time_change",
    "{image} changed the creation time of {target_filename} on {host}",
    (
        Field("CreationUtcTime", None, reason="the new creation time is not stored"),
        Field("PreviousCreationUtcTime", None, reason="the old creation time is not stored"),
    ),
)
FILE_RENAME = _file_op(
    "file_rename",
    "rename",
    "{image} renamed a file to {target_filename} on {host}",
    (Field("SourceFilename", None, reason="the old name of a renamed file is not stored"),),
)
FILE_EXECUTABLE_DETECTED = _file_op(
    "file_executable_detected",
    "exe_detected",
    "{image} wrote executable {target_filename} on {host}",
)
FILE_BLOCK_EXECUTABLE = _file_op(
    "file_block_executable",
    "blocked_exe",
    "{image} was blocked writing executable {target_filename} on {host}",
)
FILE_BLOCK_SHRED = _file_op(
    "file_block_shred",
    "blocked_shred",
    "{image} was blocked shredding {target_filename} on {host}",
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
        SECURITY_LOGON,
        SECURITY_FAILED_LOGON,
        SECURITY_EXPLICIT_CREDENTIALS,
        REGISTRY_SET,
        REGISTRY_ADD,
        REGISTRY_DELETE,
        REGISTRY_RENAME,
        REGISTRY_EVENT,
        IMAGE_LOAD,
        DRIVER_LOAD,
        PROCESS_ACCESS,
        CREATE_REMOTE_THREAD,
        RAW_ACCESS_THREAD,
        PROCESS_TAMPERING,
        PIPE_CREATED,
        CLIPBOARD_CHANGE,
        WMI_EVENT,
        CREATE_STREAM_HASH,
        FILE_CHANGE,
        FILE_RENAME,
        FILE_EXECUTABLE_DETECTED,
        FILE_BLOCK_EXECUTABLE,
        FILE_BLOCK_SHRED,
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

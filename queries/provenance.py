"""Responder questions, answered from the graph: where did this process come from and what
did it start; who wrote this file and what ran it; what happened on this host; who talked to
this address. The API's provenance endpoints and the CLI's `trace` commands ask these.

A process or file that is not there raises `ProcessNotFound` / `FileNotFound`; a timeline
cursor that is not this host's raises `InvalidCursor`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from provgraph.core.times import EPOCH, FAR_FUTURE
from provgraph.graph.model import BY_LABEL, EDGES
from provgraph.graph.tx import Graph, TxReads
from provgraph.graph.values import plain
from provgraph.graph.writer import file_key
from provgraph.ingest.model import normalise_host
from provgraph.queries.cursors import decode_cursor, encode_cursor
from provgraph.queries.errors import FileNotFound, InvalidCursor, ProcessNotFound
from provgraph.queries.subgraph import FACT_RELS
from pydantic import BaseModel, Field

# -- what the answers look like ----------------------------------------------------------------
Props = dict[str, Any]


# A process's facts of each kind, counted (see queries.subgraph.FACT_RELS): {"WROTE": 24, …},
# kinds it has none of left out. `GET /graph/facts` pages through one kind.
Facts = dict[str, int]


class ProcessNode(BaseModel):
    process: Props
    facts: Facts = {}
    children: list[ProcessNode] = []


class ProcessLineage(BaseModel):
    process: Props
    ancestry: list[Props] = Field(description="root first, the direct parent last")
    descendants: list[ProcessNode] = Field(description="the process's children, as trees")
    truncated: bool
    facts: Facts = Field(default={}, description="the process's facts per kind, counted")
    wrote: list[Props] = Field(default=[], description="the first `activity` of them")
    connected: list[Props] = Field(default=[], description="outbound: what it connected to")
    accepted: list[Props] = Field(
        default=[], description="inbound: peers that connected to it, and on which local ports"
    )
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
    process: Props | None = Field(
        default=None,
        description="null for what no process did or no record names (logons, logoffs, "
        "failed logons, share access, service installs, most task changes)",
    )
    target: str | None = None
    details: Props = {}


class Timeline(BaseModel):
    host: str
    events: list[TimelineEvent]
    next_cursor: str | None = Field(description="null on the last page")


class Contact(BaseModel):
    process: Props
    direction: Literal["outbound", "inbound"] | None = Field(
        default=None,
        description="outbound: the process connected to the endpoint; inbound: the endpoint "
        "connected to the process (on local_ports). None for a DNS resolver.",
    )
    first_time: datetime | None = None
    last_time: datetime | None = None
    count: int | None = None
    local_port: int | None = None
    local_ports: list[int] | None = None


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


# Times as microseconds since the epoch: integers cross the wire and decode at a fraction of
# the cost of DateTimes, which the Python driver hydrates one by one (two thirds of a
# 200-row timeline page's client time); `_from_us` makes them datetimes again.
_US = "%(v)s.epochSeconds * 1000000 + %(v)s.microsecond"
_PROCESS_BRIEF_US = (
    "{.uid, .name, .pid, .image, .command_line, .user, .host, start_time: "
    + _US % {"v": "p.start_time"}
    + "}"
)
_PROCESS_TIMES = BY_LABEL["Process"].times


def _process_us(var: str) -> str:
    """All of a process's properties, its times in microseconds (`_process` reads them)."""
    return (
        var
        + " {.*, "
        + ", ".join(f"{t}: " + _US % {"v": f"{var}.{t}"} for t in _PROCESS_TIMES)
        + "}"
    )


# -- the queries -------------------------------------------------------------------------------
MAX_HOPS = 64  # ancestry chains longer than this are cut (and say so)

# Counted from the degree store: no edge is read.
_FACT_COUNTS = "[" + ", ".join(f"COUNT {{ (p)-[:{t}]->() }}" for t in FACT_RELS) + "]"

GET_PROCESS = (
    """
MATCH (p:Process {uid: $uid})
RETURN """
    + _process_us("p")
    + """ AS props, """
    + _FACT_COUNTS
    + """ AS facts
"""
)

# The longest chain of creators above the process, bounded by $hops.
PROCESS_ANCESTRY = (
    """
MATCH (p:Process {uid: $uid})
OPTIONAL MATCH chain = (a:Process)-[:SPAWNED*1..64]->(p)
WHERE length(chain) <= $hops
WITH chain ORDER BY length(chain) DESC LIMIT 1
RETURN [n IN nodes(chain) | """
    + _process_us("n")
    + """] AS chain
"""
)

PROCESS_DESCENDANTS = (
    """
MATCH path = (p:Process {uid: $uid})-[:SPAWNED*1..10]->(d:Process)
WHERE length(path) <= $depth
WITH d, nodes(path)[-2].uid AS parent, length(path) AS level
ORDER BY level, d.start_time
LIMIT $limit
WITH d AS p, parent, level
RETURN """
    + _process_us("p")
    + """ AS props, parent, level, """
    + _FACT_COUNTS
    + """ AS facts
ORDER BY level, p.start_time
"""
)

# Its times as epoch microseconds (see _US): DateTimes hydrated one by one in the driver were
# 39% of a lineage request's API time; `_activity` makes them ISO text again.
PROCESS_ACTIVITY = (
    """
MATCH (p:Process {uid: $uid})
CALL (p) {
  OPTIONAL MATCH (p)-[w:WROTE]->(f:File)
  WITH f, w ORDER BY w.first_time LIMIT $limit
  RETURN collect(CASE WHEN f IS NULL THEN null ELSE {path: f.path, first_time: """
    + _US % {"v": "w.first_time"}
    + """,
         last_time: """
    + _US % {"v": "w.last_time"}
    + """, count: w.count, ops: w.ops} END) AS wrote
}
CALL (p) {
  OPTIONAL MATCH (p)-[r:CONNECTED_TO]->(c:Connection)
  WITH c, r ORDER BY r.first_time LIMIT $limit
  RETURN collect(CASE WHEN c IS NULL THEN null ELSE {ip: c.ip, port: c.port,
         protocol: c.protocol, hostname: c.hostname, first_time: """
    + _US % {"v": "r.first_time"}
    + """,
         count: r.count} END) AS connected
}
CALL (p) {
  OPTIONAL MATCH (p)-[r:ACCEPTED]->(c:Connection)
  WITH c, r ORDER BY r.first_time LIMIT $limit
  RETURN collect(CASE WHEN c IS NULL THEN null ELSE {ip: c.ip, protocol: c.protocol,
         hostname: c.hostname, local_ports: r.local_ports, first_time: """
    + _US % {"v": "r.first_time"}
    + """,
         count: r.count} END) AS accepted
}
CALL (p) {
  OPTIONAL MATCH (p)-[x:EXECUTED]->(f:File)
  RETURN collect(CASE WHEN f IS NULL THEN null ELSE {path: f.path, time: """
    + _US % {"v": "x.time"}
    + """} END)
         AS executed
}
RETURN wrote, connected, accepted, executed
"""
)


FILES_BY_KEY = """
MATCH (f:File {key: $key})
RETURN properties(f) AS props
"""

FILES_BY_PATH = """
MATCH (f:File {path: $path})
RETURN properties(f) AS props
ORDER BY f.key
LIMIT 50
"""

# A Windows path on any host, whatever its case: file keys hold the path lower-cased, so one
# key seek per host finds it (Windows paths are case-insensitive; the logs spell them freely).
FILES_BY_KEY_ON_EVERY_HOST = """
MATCH (h:Host)
WITH h.name + '|' + $lowered AS key
MATCH (f:File {key: key})
RETURN properties(f) AS props
ORDER BY f.key
LIMIT 50
"""

# Where a host's timeline can begin and end: every event moves its host's first and last
# seen; a process's start can be older (told by a child's record), read from the index ends.
HOST_SPAN = """
OPTIONAL MATCH (h:Host {name: $host})
CALL () {
  OPTIONAL MATCH (p:Process) WHERE p.host = $host AND p.start_time IS NOT NULL
  RETURN p.start_time AS first_start ORDER BY p.start_time LIMIT 1
}
CALL () {
  OPTIONAL MATCH (p:Process) WHERE p.host = $host AND p.start_time IS NOT NULL
  RETURN p.start_time AS last_start ORDER BY p.start_time DESC LIMIT 1
}
RETURN h.first_seen AS first_seen, h.last_seen AS last_seen, first_start, last_start
"""

HOST_KNOWN = """
MATCH (h:Host {name: $host})
RETURN count(h) > 0 AS known
"""

# C:\…, C:/…, \\server\share…: a path as Windows writes it.
_WINDOWS_PATH = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")

_PROCESS_BRIEF = "{.uid, .name, .pid, .image, .command_line, .user, .host, .start_time}"
FILE_WRITERS = (
    """
MATCH (f:File {key: $key})<-[w:WROTE]-(p:Process)
WITH p, w ORDER BY w.first_time LIMIT $limit
CALL (p) {
  OPTIONAL MATCH chain = (a:Process)-[:SPAWNED*0..64]->(p)
  WITH chain ORDER BY length(chain) DESC LIMIT 1
  RETURN [n IN nodes(chain) | n """
    + _PROCESS_BRIEF_US.replace("p.start_time", "n.start_time")
    + """] AS lineage
}
RETURN """
    + _process_us("p")
    + """ AS process,
       w {.count, .ops, .sources, first_time: """
    + _US % {"v": "w.first_time"}
    + """, last_time: """
    + _US % {"v": "w.last_time"}
    + """} AS wrote, lineage
ORDER BY w.first_time
"""
)

FILE_EXECUTIONS = (
    """
MATCH (f:File {key: $key})<-[x:EXECUTED]-(p:Process)
CALL (p) {
  OPTIONAL MATCH (parent:Process)-[:SPAWNED]->(p)
  RETURN parent """
    + _PROCESS_BRIEF_US.replace("p.start_time", "parent.start_time")
    + """ AS parent LIMIT 1
}
CALL (p) {
  OPTIONAL MATCH (p)-[:SPAWNED]->(child:Process)
  RETURN count(child) AS children
}
RETURN """
    + _process_us("p")
    + """ AS process, """
    + _US % {"v": "x.time"}
    + """ AS time, parent, children
ORDER BY time
LIMIT $limit
"""
)

# Before the host's first record only process starts can be on it (a start told by a child's
# record); every other kind is an event of the host, which moved its first_seen.
HOST_EARLY_STARTS = (
    """
MATCH (p:Process) WHERE p.host = $host AND p.start_time >= $from AND p.start_time < $before
WITH p, p.start_time AS time, 'process_start' AS kind, p.image AS target
WITH p, time, kind, target, kind + '|' + p.uid + '|' + coalesce(target, '') AS key
WHERE $after_time IS NULL OR time > $after_time OR (time = $after_time AND key > $after_key)
WITH p, time, kind, target, key ORDER BY time, key LIMIT $limit
RETURN """
    + _US % {"v": "time"}
    + """ AS time, kind, p """
    + _PROCESS_BRIEF_US
    + """ AS process, target, key,
       {command_line: p.command_line, user: p.user, parent_uid: p.parent_uid} AS details
ORDER BY time, key
"""
)

# -- accounts, part 2: what happened on a host with no process named (graph v2, k2b) --------
# Logons (start), logoffs (end), failed logons, share access, service installs and task
# changes, as timeline rows with a null process unless the record named one (a task changed
# by its client process). Such a row is keyed for paging by its Logon or Account key; the
# account is named in `details` as `DOMAIN\\name` when known, else its key.
_WHO = "coalesce(a.domain + '\\\\' + a.name, a.name, a.key)"
_SYSTEM_TIMELINE = (
    """  MATCH (l:Logon {host: $host}) WHERE l.start_time >= $from AND l.start_time < $before
  OPTIONAL MATCH (a:Account)-[:LOGGED_ON]->(l)
  WITH l, head(collect(a)) AS a
  RETURN l.start_time AS time, 'logon' AS kind, null AS p, %(who)s AS target,
         {account: a.key, logon: l.key, logon_id: l.logon_id, logon_type: l.logon_type,
          source_ip: l.source_ip, workstation: l.workstation, elevated: l.elevated,
          auth_package: l.auth_package} AS details
  UNION ALL
  MATCH (l:Logon {host: $host}) WHERE l.end_time >= $from AND l.end_time < $before
  OPTIONAL MATCH (a:Account)-[:LOGGED_ON]->(l)
  WITH l, head(collect(a)) AS a
  RETURN l.end_time AS time, 'logoff' AS kind, null AS p, %(who)s AS target,
         {account: a.key, logon: l.key, logon_id: l.logon_id, logon_type: l.logon_type}
         AS details
  UNION ALL
  MATCH (a:Account)-[r:FAILED_LOGON]->(:Host {name: $host})
  WHERE r.last_time >= $from AND r.first_time < $before
  UNWIND r.times AS t
  WITH a, r, t WHERE t >= $from AND t < $before
  RETURN t AS time, 'failed_logon' AS kind, null AS p, %(who)s AS target,
         {account: a.key, statuses: r.statuses, failure_reasons: r.failure_reasons,
          logon_types: r.logon_types, source_ips: r.source_ips} AS details
""".replace("%(who)s", _WHO)
    + "".join(
        """  UNION ALL
  MATCH (x:%(label)s {host: $host})<-[r:%(rel)s]-(w)
  WHERE r.last_time >= $from AND r.first_time < $before
  OPTIONAL MATCH (w)<-[:LOGGED_ON]-(la:Account)
  WITH x, r, w, head(collect(la)) AS la
  OPTIONAL MATCH (w:Process)-[:RAN_AS]->(ra:Account)
  WITH x, r, w, la, head(collect(ra)) AS ra
  WITH x, r, w, CASE WHEN w:Account THEN w ELSE coalesce(la, ra) END AS a
  UNWIND r.times AS t
  WITH x, r, w, a, t WHERE t >= $from AND t < $before%(dedupe)s
  RETURN t AS time, '%(kind)s' AS kind, CASE WHEN w:Process THEN w ELSE null END AS p,
         x.%(name)s AS target,
         {account: a.key, who: CASE WHEN a IS NULL THEN null ELSE %(who)s END,
          logon: CASE WHEN w:Logon THEN w.key ELSE null END, %(details)s} AS details
""".replace("%(label)s", label)
        .replace("%(rel)s", rel)
        .replace("%(kind)s", kind)
        .replace("%(name)s", name)
        .replace("%(details)s", details)
        .replace("%(dedupe)s", dedupe)
        .replace("%(who)s", _WHO)
        for label, rel, kind, name, details, dedupe in (
            (
                "Share",
                "ACCESSED_SHARE",
                "share_access",
                "share_name",
                "access_masks: r.access_masks, relative_targets: r.relative_targets[..10], "
                "source_ips: r.source_ips, share_path: x.share_path",
                "",
            ),
            (
                "Service",
                "INSTALLED_SERVICE",
                "service_install",
                "service_name",
                "image_path: x.image_path, start_type: x.start_type, "
                "service_account: x.service_account",
                "",
            ),
            (
                "ScheduledTask",
                "CHANGED_TASK",
                "task_change",
                "task_name",
                "ops: r.ops",
                # a change named with its client process is one row, the process's
                "\n    AND (w:Process OR NOT EXISTS {"
                " (x)<-[q:CHANGED_TASK]-(:Process) WHERE t IN q.times })",
            ),
        )
    )
)


# -- the host timeline's facts, generated from graph.model -------------------------------------
@dataclass(frozen=True)
class TimelineKind:
    """How one timed edge type reads on the host timeline: `kind`, and Cypher over the edge `r`
    and its end node `x` for the row's `target` and `details`."""

    kind: str
    target: str
    details: str = "{}"


_WHO_X = "coalesce(x.domain + '\\\\' + x.name, x.name, x.key)"  # _WHO, of the end node

# Every timed edge of graph.model from a process or a host is on the timeline (`PROCESS_FACTS`,
# `HOST_FACTS`); these say how each reads. One added to the model and not named here still
# comes, read as its type in lower case with its end node's path, name or key as target.
TIMELINE_KINDS: dict[str, TimelineKind] = {
    "WROTE": TimelineKind("file_write", "x.path", "{ops: r.ops}"),
    "CONNECTED_TO": TimelineKind(
        "network_connect",
        "x.key",
        "{ip: x.ip, port: x.port, protocol: x.protocol, hostname: x.hostname}",
    ),
    "ACCEPTED": TimelineKind(
        "network_accept",
        "x.key",
        "{ip: x.ip, protocol: x.protocol, hostname: x.hostname, local_ports: r.local_ports}",
    ),
    "RESOLVED": TimelineKind("dns_query", "x.name", "{answers: r.answers}"),
    "USED_CREDENTIALS": TimelineKind(
        "explicit_credentials",
        _WHO_X,
        "{account: x.key, target_servers: r.target_servers, target_infos: r.target_infos}",
    ),
    "RAN_SCRIPT": TimelineKind(
        "script_block",
        "coalesce(x.path, x.script_block_id)",
        "{script_block_id: x.script_block_id, complete: x.complete, parts_seen: x.parts_seen,"
        " parts_total: x.parts_total}",
    ),
    # -- k1: what a process (or, for drivers and WMI subscriptions, the host) did to the system
    "LOADED": TimelineKind("image_load", "x.path", "{sha256: x.sha256, signed: x.signed}"),
    "ACCESSED": TimelineKind(
        "process_access", "x.image", "{target_uid: x.uid, granted_access: r.granted_access}"
    ),
    "INJECTED": TimelineKind(
        "remote_thread",
        "x.image",
        "{target_uid: x.uid, start_address: r.start_address, actions: r.actions}",
    ),
    "WROTE_REGISTRY": TimelineKind("registry", "x.path", "{ops: r.ops, details: r.details}"),
    "CREATED_PIPE": TimelineKind("pipe_create", "x.name"),
    "CONNECTED_PIPE": TimelineKind("pipe_connect", "x.name"),
    "READ_RAW": TimelineKind("raw_read", "x.path"),
    "TAMPERED": TimelineKind("tampering", "x.path", "{types: r.types}"),
    "SET_CLIPBOARD": TimelineKind("clipboard", "x.name"),
    "LOADED_DRIVER": TimelineKind(
        "driver_load", "x.path", "{sha256: x.sha256, signed: x.signed, signer: x.signer}"
    ),
    "REGISTERED_WMI": TimelineKind(
        "wmi",
        "x.kind + ':' + x.name",
        "{operations: r.operations, query: x.query, destination: x.destination}",
    ),
}
# On the timeline by `_SYSTEM_TIMELINE` (what accounts and logons did, with who did it), or not
# at all: a WMI binding joins two objects the host registered, and has no host of its own.
SYSTEM_FACTS = ("FAILED_LOGON", "ACCESSED_SHARE", "INSTALLED_SERVICE", "CHANGED_TASK")
OFF_TIMELINE = ("BOUND_TO",)


def _timed_from(start: str) -> tuple[str, ...]:
    return tuple(
        dict.fromkeys(
            e.type
            for e in EDGES
            if e.start == start and "times" in e.times and e.type not in SYSTEM_FACTS
        )
    )


PROCESS_FACTS = _timed_from("Process")
HOST_FACTS = _timed_from("Host")


def _kind_of(rel: str) -> TimelineKind:
    return TIMELINE_KINDS.get(
        rel, TimelineKind(rel.lower(), "coalesce(x.path, x.name, x.key)", "{}")
    )


def _case(rels: tuple[str, ...], part: str) -> str:
    """`CASE type(r) WHEN 'WROTE' THEN <part of WROTE> …`: one expression for every rel (the
    kind as a literal; names from the model and this module only, never from input)."""

    def value(rel: str) -> str:
        found = getattr(_kind_of(rel), part)
        return f"'{found}'" if part == "kind" else found

    return "CASE type(r) " + " ".join(f"WHEN '{rel}' THEN {value(rel)}" for rel in rels) + " END"


# Each time of a timed edge in [from, before) is a row. An edge holds its whole life's
# first_time and last_time, so one with no time in the window is dropped unread; target and
# kind are built for the window's rows, the details (maps) only for the page's.
_FACTS_IN_WINDOW = """
  WHERE r.last_time >= $from AND r.first_time < $before
  UNWIND r.times AS t
  WITH p, r, x, t WHERE t >= $from AND t < $before
  WITH p, r, x, t AS time, %(kind)s AS kind, %(target)s AS target
  WITH p, r, x, time, kind, target,
       kind + '|' + coalesce(p.uid, '') + '|' + coalesce(target, '')
       + CASE WHEN x:Process THEN '|' + x.uid ELSE '' END AS key"""

# Keeps a branch's own first $limit rows past the cursor (a top-k sort, not a sort of all).
_AFTER_CURSOR = """
  WHERE $after_time IS NULL OR time > $after_time OR (time = $after_time AND key > $after_key)"""
_BRANCH_PAGE = """
  RETURN time, kind, p, target, r, x, %(details)s AS details, key
  ORDER BY time, key
  LIMIT $limit"""

# Every kind of fact on a host, in one time order; paged by (time, key) with key =
# kind|process uid (or logon, or account)|target[|target process uid]. A page is looked for in
# a window [from, before): the facts of a process come after its start (give or take
# ALIVE_SLACK: sources stamp a start and its process's facts with clocks and precisions of
# their own; MDE's connections come up to a second before their process's start) and before
# its facts_before (graph.writer: its latest fact, rounded up to the hour), so only processes
# started before the window's end with facts_before past its start can have any in it. Not
# the end: no Linux source records one, and a process that never ended counted as alive for
# the rest of the history (on one bench host a 30-minute window read the edges of 23,960
# processes to keep 279). The (host, facts_before, start_time) index finds them from its
# entries alone, and the edges of the host's other processes are not read; a window early in
# a long history reads the index entries (not the edges) of every process with facts after
# it. A process whose start was never seen is a placeholder (a start record sets both), found
# by the (host, placeholder) index. Each process's edges are walked once for every timed type
# together. `host_timeline` widens the window until it holds a page; each window reads only
# what could be in it.
HOST_TIMELINE = (
    """
CALL () {
  MATCH (p:Process) WHERE p.host = $host AND p.start_time >= $from AND p.start_time < $before
  WITH p, p.start_time AS time, 'process_start' AS kind, p.image AS target, null AS r,
       null AS x
  WITH p, r, x, time, kind, target, kind + '|' + p.uid + '|' + coalesce(target, '') AS key"""
    + _AFTER_CURSOR
    + _BRANCH_PAGE % {"details": "null"}
    + """
  UNION ALL
  MATCH (p:Process) WHERE p.host = $host AND p.end_time >= $from AND p.end_time < $before
  WITH p, p.end_time AS time, 'process_end' AS kind, p.image AS target, null AS r, null AS x
  WITH p, r, x, time, kind, target, kind + '|' + p.uid + '|' + coalesce(target, '') AS key"""
    + _AFTER_CURSOR
    + _BRANCH_PAGE % {"details": "null"}
    + """
  UNION ALL
  CALL () {
    MATCH (p:Process) USING INDEX p:Process(host, facts_before, start_time)
    WHERE p.host = $host AND p.facts_before > $from AND p.start_time < $alive_before
    RETURN p
    UNION ALL
    MATCH (p:Process) WHERE p.host = $host AND p.placeholder = true AND p.start_time IS NULL
      AND p.facts_before > $from
    RETURN p
  }
  MATCH (p)-[r:"""
    + "|".join(PROCESS_FACTS)
    + "]->(x)"
    + _FACTS_IN_WINDOW
    % {"kind": _case(PROCESS_FACTS, "kind"), "target": _case(PROCESS_FACTS, "target")}
    + _AFTER_CURSOR
    + _BRANCH_PAGE % {"details": "null"}
    + """
  UNION ALL
  MATCH (:Host {name: $host})-[r:"""
    + "|".join(HOST_FACTS)
    + """]->(x)
  WITH null AS p, r, x"""
    + _FACTS_IN_WINDOW % {"kind": _case(HOST_FACTS, "kind"), "target": _case(HOST_FACTS, "target")}
    + _AFTER_CURSOR
    + _BRANCH_PAGE % {"details": "null"}
    + """
  UNION ALL
  CALL () {
"""
    + _SYSTEM_TIMELINE
    + """  }
  WITH time, kind, p, target, null AS r, null AS x, details,
       kind + '|' + coalesce(p.uid, details.logon, details.account, '') + '|'
       + coalesce(target, '') AS key"""
    + _AFTER_CURSOR
    + _BRANCH_PAGE % {"details": "details"}
    + """
}
WITH time, kind, p, target, r, x, details, key ORDER BY time, key LIMIT $limit
RETURN """
    + _US % {"v": "time"}
    + """ AS time, kind, CASE WHEN p IS NULL THEN null ELSE p """
    + _PROCESS_BRIEF_US
    + """ END AS process, target, key,
       CASE kind
         WHEN 'process_start' THEN {command_line: p.command_line, user: p.user,
                                    parent_uid: p.parent_uid}
         WHEN 'process_end' THEN {}
         ELSE coalesce(details, """
    + _case(PROCESS_FACTS + HOST_FACTS, "details")
    + """) END AS details
ORDER BY time, key
"""
)

# The first window of a timeline page, and how much each retry widens it: a busy host fills
# a page within minutes; a quiet one needs a few widenings, each a cheap index range.
TIMELINE_WINDOW = timedelta(minutes=30)
TIMELINE_WIDEN = 8
ALIVE_SLACK = timedelta(minutes=10)

# Who contacted a connection endpoint: the same walk whichever way the endpoint was found.
_CONTACTS = (
    """
CALL (c) {
  OPTIONAL MATCH (p:Process)-[r:CONNECTED_TO|ACCEPTED]->(c)
  WITH p, r ORDER BY r.first_time LIMIT $limit
  RETURN collect(CASE WHEN p IS NULL THEN null ELSE {process: p """
    + _PROCESS_BRIEF
    + """,
         direction: CASE type(r) WHEN 'ACCEPTED' THEN 'inbound' ELSE 'outbound' END,
         first_time: r.first_time, last_time: r.last_time, count: r.count,
         local_port: r.local_port, local_ports: r.local_ports} END) AS contacts
}
RETURN properties(c) AS connection, contacts
ORDER BY c.key
LIMIT $limit
"""
)

CONTACTS_BY_IP = "MATCH (c:Connection {ip: $ip})\n" + _CONTACTS
CONTACTS_BY_NAME = "MATCH (c:Connection) WHERE c.hostname = $name\n" + _CONTACTS

DOMAIN_RESOLVERS = (
    """
MATCH (d:Domain {name: $name})
CALL (d) {
  OPTIONAL MATCH (p:Process)-[r:RESOLVED]->(d)
  WITH p, r ORDER BY r.first_time LIMIT $limit
  RETURN collect(CASE WHEN p IS NULL THEN null ELSE {process: p """
    + _PROCESS_BRIEF
    + """,
         first_time: r.first_time, last_time: r.last_time, count: r.count} END) AS resolvers,
         reduce(acc = [], x IN collect(r.answers) | acc + x) AS answers
}
RETURN properties(d) AS domain, resolvers, answers
"""
)


def _drop_bulk(props: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in plain(props).items() if k not in ("raw", "times")}


def _process(props: dict[str, Any]) -> dict[str, Any]:
    """A `_process_us` row as `_drop_bulk(properties(p))` gives it: times as ISO text, and a
    time the process does not have left out (the projection names every one)."""
    out = {}
    for key, value in props.items():
        if key in _PROCESS_TIMES:
            if value is not None:
                out[key] = plain(_from_us(value))
        elif key not in ("raw", "times"):
            out[key] = plain(value)
    return out


_ACTIVITY_TIMES = ("first_time", "last_time", "time")


def _activity(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """PROCESS_ACTIVITY's items with their microsecond times as ISO text, as `plain` gives."""
    out = []
    for item in items:
        data = plain(item)
        for name in _ACTIVITY_TIMES:
            if data.get(name) is not None:
                data[name] = plain(_from_us(data[name]))
        out.append(data)
    return out


def _at(micros: int | None) -> datetime | None:
    return None if micros is None else _from_us(micros)


def _facts(counts: list[int]) -> Facts:
    return {rel: n for rel, n in zip(FACT_RELS, counts, strict=True) if n}


def process_lineage(
    graph: Graph,
    *,
    uid: str,
    depth: int = 3,
    ancestry: int = MAX_HOPS,
    limit: int = 500,
    activity: int | None = None,
) -> ProcessLineage:
    """`limit` descendants; `activity` (default `limit`) files, connections and runs of each
    kind, with every kind counted in `facts`. One read transaction for its four queries."""
    return graph.reads(
        lambda q: _process_lineage(
            q, uid=uid, depth=depth, ancestry=ancestry, limit=limit, activity=activity
        ),
        "reading a process's lineage",
    )


def _process_lineage(
    graph: TxReads, *, uid: str, depth: int, ancestry: int, limit: int, activity: int | None
) -> ProcessLineage:
    rows = graph.read(GET_PROCESS, {"uid": uid})
    if not rows:
        raise ProcessNotFound(uid)
    chain = graph.read(PROCESS_ANCESTRY, {"uid": uid, "hops": min(ancestry, MAX_HOPS)})
    ancestors = [_process(p) for p in (chain[0]["chain"] if chain else [])][:-1]
    found = graph.read(PROCESS_DESCENDANTS, {"uid": uid, "depth": depth, "limit": limit + 1})
    truncated = len(found) > limit
    nodes: dict[str, ProcessNode] = {}
    top: list[ProcessNode] = []
    for row in found[:limit]:
        node = ProcessNode(process=_process(row["props"]), facts=_facts(row["facts"]))
        nodes[row["props"]["uid"]] = node
        if row["parent"] == uid:
            top.append(node)
        elif row["parent"] in nodes:
            nodes[row["parent"]].children.append(node)
    did = graph.read(
        PROCESS_ACTIVITY, {"uid": uid, "limit": limit if activity is None else activity}
    )[0]
    return ProcessLineage(
        process=_process(rows[0]["props"]),
        facts=_facts(rows[0]["facts"]),
        ancestry=ancestors,
        descendants=top,
        truncated=truncated,
        wrote=_activity(did["wrote"]),
        connected=_activity(did["connected"]),
        accepted=_activity(did["accepted"]),
        executed=_activity(did["executed"]),
    )


def file_provenance(
    graph: Graph, *, path: str, host: str | None = None, limit: int = 200
) -> list[FileProvenance]:
    """Every file the path names (on `host`, else on every host), with its writers and
    executions: one read transaction."""
    return graph.reads(
        lambda q: _file_provenance(q, path=path, host=host, limit=limit),
        "reading a file's provenance",
    )


def _file_provenance(
    graph: TxReads, *, path: str, host: str | None, limit: int
) -> list[FileProvenance]:
    if host:
        files = graph.read(FILES_BY_KEY, {"key": file_key(normalise_host(host), path)})
    elif is_windows_path(path):
        files = graph.read(FILES_BY_KEY_ON_EVERY_HOST, {"lowered": path.lower()})
    else:
        files = graph.read(FILES_BY_PATH, {"path": path})
    if not files:
        raise FileNotFound(path, where=host)
    answers = []
    for row in files:
        key = row["props"]["key"]
        writers = [
            FileWriter(
                process=_process(w["process"]),
                lineage=[_brief(n) for n in w["lineage"]],
                first_time=_at(w["wrote"]["first_time"]),
                last_time=_at(w["wrote"]["last_time"]),
                **{k: v for k, v in plain(w["wrote"]).items() if k in ("count", "ops", "sources")},
            )
            for w in graph.read(FILE_WRITERS, {"key": key, "limit": limit})
        ]
        executions = [
            FileExecution(
                process=_process(x["process"]),
                time=_at(x["time"]),
                parent=None if x["parent"] is None else _brief(x["parent"]),
                children=x["children"],
            )
            for x in graph.read(FILE_EXECUTIONS, {"key": key, "limit": limit})
        ]
        first_write = min((w.first_time for w in writers if w.first_time), default=None)
        after = first_write is not None and any(
            x.time is not None and x.time > first_write for x in executions
        )
        answers.append(
            FileProvenance(
                file=plain(row["props"]),
                writers=writers,
                executions=executions,
                written_then_executed=after,
            )
        )
    return answers


def is_windows_path(path: str) -> bool:
    return bool(_WINDOWS_PATH.match(path))


def host_known(graph: Graph, *, host: str) -> bool:
    """Whether anything was ever seen on the host (short name, any case)."""
    return bool(graph.read(HOST_KNOWN, {"host": normalise_host(host)})[0]["known"])


def _from_us(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def _brief(process: dict[str, Any]) -> dict[str, Any]:
    """A `_PROCESS_BRIEF_US` row as `plain` gives the same process (start_time as ISO text)."""
    micros = process.get("start_time")
    return {**process, "start_time": None if micros is None else plain(_from_us(micros))}


def _utc(value: Any) -> datetime:
    return value.to_native().astimezone(UTC)


def host_timeline(
    graph: Graph,
    *,
    host: str,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
    cursor: str | None = None,
) -> Timeline:
    """A page of the host's events in time order: its span and windows in one read
    transaction."""
    return graph.reads(
        lambda q: _host_timeline(
            q, host=host, since=since, until=until, limit=limit, cursor=cursor
        ),
        "reading a host timeline",
    )


def _host_timeline(
    graph: TxReads,
    *,
    host: str,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
) -> Timeline:
    name = normalise_host(host)
    after_time: Any = None
    after_key = ""
    if cursor:
        data = decode_cursor("timeline", cursor)
        if data.get("host") != name:
            raise InvalidCursor("this cursor belongs to another host's timeline")
        try:
            after_time = datetime.fromisoformat(data["t"])
            after_key = str(data["key"])
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidCursor("the cursor does not hold a place in the timeline") from error
    start = max(since or EPOCH, after_time or EPOCH)
    end = until or FAR_FUTURE
    params = {
        "host": name,
        "after_time": after_time,
        "after_key": after_key,
        "limit": limit + 1,
    }
    # Windows only within the host's span: from 1970 or to the far future they hold nothing.
    span = graph.read(HOST_SPAN, {"host": name})[0]
    # As fixed offsets: the driver hands back a zone named "UTC", which Neo4j does not hold
    # equal to the same instant stored with offset Z (a window would miss its first event).
    firsts = [_utc(span[k]) for k in ("first_seen", "first_start") if span[k] is not None]
    lasts = [_utc(span[k]) for k in ("last_seen", "last_start") if span[k] is not None]
    if not firsts:  # nothing was ever seen there
        end = start
    else:
        start = max(start, min(firsts))
        end = min(end, max(lasts) + timedelta(microseconds=1))
    # Each window's rows are all the events in it (every process that could have one was
    # read), so they are final: the next, wider window starts where this one ended.
    rows: list[dict[str, Any]] = []
    seen_from = _utc(span["first_seen"]) if span["first_seen"] is not None else start
    if start < min(seen_from, end):
        before = min(seen_from, end)
        rows += graph.read_plain(HOST_EARLY_STARTS, {**params, "from": start, "before": before})
        start = before
    window = TIMELINE_WINDOW
    while start < end and len(rows) <= limit:
        before = end if end - start <= window else start + window
        rows += graph.read_plain(
            HOST_TIMELINE,
            {
                **params,
                "from": start,
                "before": before,
                "alive_before": before + ALIVE_SLACK,
                "limit": limit + 1 - len(rows),
            },
        )
        start = before
        window *= TIMELINE_WIDEN
    events = [
        TimelineEvent(
            time=_from_us(r["time"]),
            kind=r["kind"],
            process=None if r["process"] is None else _brief(r["process"]),
            target=r["target"],
            details=plain(r["details"]),
        )
        for r in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(
            "timeline",
            {"host": name, "t": _from_us(last["time"]).isoformat(), "key": last["key"]},
        )
    return Timeline(host=name, events=events, next_cursor=next_cursor)


def contacts(
    graph: Graph, *, ip: str | None = None, hostname: str | None = None, limit: int = 200
) -> Contacts:
    connections: list[ConnectionContacts] = []
    domains: list[DomainContacts] = []
    if ip:
        rows = graph.read(CONTACTS_BY_IP, {"ip": ip, "limit": limit})
        connections += [_connection(r) for r in rows]
    if hostname:
        name = hostname.strip().lower().rstrip(".")
        rows = graph.read(CONTACTS_BY_NAME, {"name": name, "limit": limit})
        connections += [_connection(r) for r in rows]
        for row in graph.read(DOMAIN_RESOLVERS, {"name": name, "limit": limit}):
            answers = sorted({str(a) for a in row["answers"] or []})
            domains.append(
                DomainContacts(
                    domain=plain(row["domain"]),
                    answers=answers,
                    resolvers=[Contact.model_validate(plain(r)) for r in row["resolvers"]],
                )
            )
            # Connections to the addresses the name resolved to count as contacts of the name.
            seen = {c.connection.get("key") for c in connections}
            for address in answers:
                for r in graph.read(CONTACTS_BY_IP, {"ip": address, "limit": limit}):
                    if r["connection"].get("key") not in seen:
                        connections.append(_connection(r))
    return Contacts(query=ip or hostname or "", connections=connections, domains=domains)


def _connection(row: dict[str, Any]) -> ConnectionContacts:
    return ConnectionContacts(
        connection=plain(row["connection"]),
        contacts=[Contact.model_validate(plain(c)) for c in row["contacts"]],
    )

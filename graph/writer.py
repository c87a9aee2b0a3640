"""Normalised events become nodes and edges: batched UNWIND … MERGE, one transaction a batch.

A batch is first folded in Python (one row per node key, one row per edge, times merged),
then written nodes before edges, each statement's rows sorted by key so concurrent writers
take locks in the same order. Re-ingesting the same events changes nothing: every node and
edge is MERGEd on its key and edge time lists only take times they do not already hold.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from neo4j import ManagedTransaction, Transaction
from provgraph.core.times import EPOCH
from provgraph.graph.schema import MAX_SOURCES, MAX_TIMES
from provgraph.graph.tx import Graph
from provgraph.ingest.model import Event, FileOp, Kind, ProcessRef, classify_ip, is_pid_only

BATCH_SIZE = 5000  # events per batch: one transaction, the default everywhere
RAW_LIMIT = 4096  # bytes of raw record kept on an edge as evidence
MICROSECOND = timedelta(microseconds=1)
Statements = list[tuple[str, list[dict[str, Any]]]]


def micros(value: datetime | None) -> int | None:
    """Exact integer microseconds since the epoch (float timestamps can be off by one)."""
    return None if value is None else (value - EPOCH) // MICROSECOND


# -- statements (constant text; every value is a parameter) ------------------------------------
# Times travel as integer microseconds since the epoch and become DateTime on the server:
# the driver converts Python datetimes one by one in Python, which profiling showed to be the
# largest single cost of a batch (a WROTE row carries a list of them).
def _dt(expr: str) -> str:
    return (
        f"CASE WHEN {expr} IS NULL THEN null ELSE datetime({{epochSeconds: {expr} / 1000000, "
        f"nanosecond: {expr} % 1000000 * 1000}}) END"
    )


def _rows(scalars: tuple[str, ...] = (), lists: tuple[str, ...] = ()) -> str:
    """`UNWIND $rows AS row`, with the named time fields turned back into DateTime."""
    fields = [f"{f}: {_dt('wire.' + f)}" for f in scalars]
    fields += [f"{f}: [x IN wire.{f} | {_dt('x')}]" for f in lists]
    return "UNWIND $rows AS wire\nWITH wire {.*, " + ", ".join(fields) + "} AS row\n"


# In the loader, a batch only creates the hosts it names; their first/last-seen times are
# written apart with MERGE_HOSTS_SEEN (see graph.loader). Every batch names the same few
# hosts, and a SET on them would make each batch wait for the previous one's commit, which
# the loader overlaps with the next batch. A single transaction (write_batch) does both.
MERGE_HOSTS = (
    _rows(("first", "last"))
    + """
MERGE (h:Host {name: row.name})
ON CREATE SET h.fqdn = row.fqdn, h.first_seen = row.first, h.last_seen = row.last
"""
)

MERGE_HOSTS_SEEN = (
    MERGE_HOSTS
    + """\
ON MATCH SET h.fqdn = coalesce(h.fqdn, row.fqdn),
             h.first_seen = CASE WHEN row.first < h.first_seen THEN row.first ELSE h.first_seen END,
             h.last_seen = CASE WHEN row.last > h.last_seen THEN row.last ELSE h.last_seen END
"""
)

# A full row (from a process start) overwrites; a partial row only fills what is missing,
# so a parent first seen as a parent is completed when its own start event arrives.
# (`created_now` is a marker that lives only inside this statement.)
MERGE_PROCESSES = (
    _rows(("start", "end"))
    + """
MERGE (p:Process {uid: row.uid})
ON CREATE SET p += row.props, p.placeholder = NOT row.full, p.sources = row.sources,
              p.start_time = row.start, p.end_time = row.end, p.created_now = true
WITH p, row
// An existing process is only touched when the row can tell it something new: most rows
// come from the file and network events of a process already in the graph, and a write
// would lock it until commit, stalling the next batch (see graph.loader).
FOREACH (_ IN CASE WHEN p.created_now IS NULL AND (row.full OR row.end IS NOT NULL
                        OR (p.start_time IS NULL AND row.start IS NOT NULL)
                        OR (p.pid IS NULL AND row.props.pid IS NOT NULL)
                        OR (p.image IS NULL AND row.props.image IS NOT NULL)
                        OR (p.command_line IS NULL AND row.props.command_line IS NOT NULL)
                        OR (p.user IS NULL AND row.props.user IS NOT NULL)
                        OR (p.logon_id IS NULL AND row.props.logon_id IS NOT NULL))
                   THEN [1] ELSE [] END |
  SET p += CASE WHEN row.full THEN row.props ELSE {} END,
      p.start_time = CASE WHEN row.full THEN coalesce(row.start, p.start_time)
                     ELSE coalesce(p.start_time, row.start) END,
      p.placeholder = p.placeholder AND NOT row.full,
      p.pid = coalesce(p.pid, row.props.pid),
      p.image = coalesce(p.image, row.props.image),
      p.name = coalesce(p.name, row.props.name),
      p.command_line = coalesce(p.command_line, row.props.command_line),
      p.user = coalesce(p.user, row.props.user),
      p.logon_id = coalesce(p.logon_id, row.props.logon_id),
      p.end_time = coalesce(row.end, p.end_time),
      p.sources = CASE WHEN size(p.sources) >= $max_sources THEN p.sources
                  ELSE p.sources + [s IN row.sources WHERE NOT s IN p.sources] END)
// Only a process created just now needs its host edge (a process never changes host).
WITH p, row WHERE p.created_now
REMOVE p.created_now
WITH p, row
MATCH (h:Host {name: row.props.host})
CREATE (p)-[:ON_HOST]->(h)
"""
)

MERGE_FILES = """
UNWIND $rows AS row
MERGE (f:File {key: row.key})
ON CREATE SET f.host = row.host, f.path = row.path, f.name = row.name, f.ext = row.ext
"""

MERGE_CONNECTIONS = """
UNWIND $rows AS row
MERGE (c:Connection {key: row.key})
ON CREATE SET c.ip = row.ip, c.port = row.port, c.protocol = row.protocol,
              c.hostname = row.hostname, c.is_public = row.is_public,
              c.is_loopback = row.is_loopback
ON MATCH SET c.hostname = coalesce(c.hostname, row.hostname)
"""

MERGE_DOMAINS = """
UNWIND $rows AS row
MERGE (:Domain {name: row.name})
"""

MERGE_SPAWNED = (
    _rows(("time",))
    + """
MATCH (parent:Process {uid: row.parent}), (child:Process {uid: row.child})
MERGE (parent)-[r:SPAWNED]->(child)
ON CREATE SET r.time = row.time, r.source = row.source, r.raw = row.raw
SET child.parent_uid = row.parent
"""
)

# A creator known only by host and pid (Security 4688): the latest process with that pid on
# that host started before the child, else a placeholder keyed by host and pid.
MERGE_SPAWNED_BY_PID = (
    _rows(("time",))
    + """
MATCH (child:Process {uid: row.child})
OPTIONAL MATCH (cand:Process {host: row.host, pid: row.ppid})
WHERE cand.start_time <= row.time AND cand.uid <> row.child
WITH row, child, cand ORDER BY cand.start_time DESC
WITH row, child, collect(cand)[0] AS found
MERGE (parent:Process {uid: coalesce(found.uid, row.parent)})
ON CREATE SET parent.placeholder = true, parent.host = row.host, parent.pid = row.ppid,
              parent.image = row.pimage, parent.name = row.pname, parent.sources = []
MERGE (parent)-[r:SPAWNED]->(child)
ON CREATE SET r.time = row.time, r.source = row.source, r.raw = row.raw
SET child.parent_uid = parent.uid
WITH parent, row
MATCH (h:Host {name: row.host})
MERGE (parent)-[:ON_HOST]->(h)
"""
)

MERGE_EXECUTED = (
    _rows(("time",))
    + """
MATCH (p:Process {uid: row.uid}), (f:File {key: row.file})
MERGE (p)-[r:EXECUTED]->(f)
ON CREATE SET r.time = row.time
"""
)

# Timed edges: one edge per (process, target) holding every distinct time, so window rules
# can test exact times while the graph stays one hop per relationship. A row's times come
# sorted and never empty, so its first and last are times[0] and times[-1] (converted once,
# without copying the row: these are the most numerous rows of a batch).
_TIMED_EDGE = """
UNWIND $rows AS row
WITH row, [x IN row.times |
           datetime({epochSeconds: x / 1000000, nanosecond: x %% 1000000 * 1000})] AS times
MATCH (p:Process {uid: row.uid}), (t:%(label)s {%(key)s: row.target})
MERGE (p)-[r:%(rel)s]->(t)
ON CREATE SET r.times = times[0..$max_times], r.count = size(times),
              r.first_time = times[0], r.last_time = times[-1], r.sources = row.sources,
              r.raw = row.raw %(create_extra)s
ON MATCH SET r.count = r.count + size([t IN times WHERE NOT t IN r.times]),
             r.times = CASE WHEN size(r.times) >= $max_times THEN r.times
                       ELSE (r.times + [t IN times WHERE NOT t IN r.times])[0..$max_times] END,
             r.first_time = CASE WHEN times[0] < r.first_time THEN times[0] ELSE r.first_time END,
             r.last_time = CASE WHEN times[-1] > r.last_time THEN times[-1] ELSE r.last_time END,
             r.sources = CASE WHEN size(r.sources) >= $max_sources THEN r.sources
                         ELSE r.sources + [s IN row.sources WHERE NOT s IN r.sources] END
             %(match_extra)s
"""

MERGE_WROTE = _TIMED_EDGE % {
    "label": "File",
    "key": "key",
    "rel": "WROTE",
    "create_extra": ", r.ops = row.ops, r.access_masks = row.masks",
    "match_extra": ", r.ops = r.ops + [o IN row.ops WHERE NOT o IN r.ops],"
    " r.access_masks = r.access_masks + [m IN row.masks WHERE NOT m IN r.access_masks]",
}
MERGE_CONNECTED = _TIMED_EDGE % {
    "label": "Connection",
    "key": "key",
    "rel": "CONNECTED_TO",
    "create_extra": ", r.local_port = row.local_port",
    "match_extra": "",
}
MERGE_RESOLVED = _TIMED_EDGE % {
    "label": "Domain",
    "key": "name",
    "rel": "RESOLVED",
    "create_extra": ", r.answers = row.answers",
    "match_extra": ", r.answers = r.answers + [a IN row.answers WHERE NOT a IN r.answers]",
}


# -- folding a batch ---------------------------------------------------------------------------
def file_key(host: str, path: str) -> str:
    return f"{host}|{path.lower()}"


def file_parts(path: str) -> tuple[str, str]:
    name = path.replace("\\", "/").rsplit("/", 1)[-1].lower()
    ext = "." + name.rsplit(".", 1)[1] if "." in name.strip(".") else ""
    return name, ext


def connection_key(ip: str, port: int | None, protocol: str | None) -> str:
    return f"{ip}|{'' if port is None else port}|{protocol or ''}"


def _raw(event: Event) -> str | None:
    if event.raw is None:
        return None
    text = orjson.dumps(event.raw, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    return text if len(text) <= RAW_LIMIT else text[: RAW_LIMIT - 1] + "…"


_PROCESS_PROPS = ("pid", "image", "command_line", "user", "logon_id")


def _process_props(ref: ProcessRef, host: str) -> dict[str, Any]:
    """A process's node properties as one event tells them (None values left out)."""
    props: dict[str, Any] = {"host": host}
    for key in _PROCESS_PROPS:
        value = getattr(ref, key)
        if value is not None:
            props[key] = value
    if name := ref.name:
        props["name"] = name.lower()
    return props


@dataclass
class _Timed:
    times: set[datetime] = field(default_factory=set)
    sources: list[str] = field(default_factory=list)
    raw: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, event: Event, keep_raw: bool, source: str) -> None:
        self.times.add(event.ts)
        if len(self.sources) < MAX_SOURCES:
            self.sources.append(source)
        if self.raw is None and keep_raw:
            self.raw = _raw(event)

    def row(self, uid: str, target: str) -> dict[str, Any]:
        return {
            "uid": uid,
            "target": target,
            "times": [micros(t) for t in sorted(self.times)],
            "sources": self.sources,
            "raw": self.raw,
            **self.extra,
        }


@dataclass(frozen=True)
class Folded:
    """A batch folded into statement rows (possibly in a parser process), ready to write.

    `statements` are the batch's own transaction; `hosts` are its MERGE_HOSTS_SEEN rows,
    which the loader writes apart (see MERGE_HOSTS)."""

    statements: Statements
    hosts: list[dict[str, Any]]
    events: int
    first: datetime | None
    last: datetime | None
    origin: str | None  # the batch's last record


@dataclass
class Batch:
    """One batch of events folded into rows, ready for one transaction.

    `keep_raw=False` keeps evidence as source references only (no raw record on edges)."""

    keep_raw: bool = True

    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    processes: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    connections: dict[str, dict[str, Any]] = field(default_factory=dict)
    domains: set[str] = field(default_factory=set)
    spawned: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    spawned_by_pid: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    executed: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    wrote: dict[tuple[str, str], _Timed] = field(default_factory=dict)
    connected: dict[tuple[str, str], _Timed] = field(default_factory=dict)
    resolved: dict[tuple[str, str], _Timed] = field(default_factory=dict)
    events: int = 0
    _source: str = ""  # the latest event's source reference, formatted once

    def add(self, event: Event) -> None:
        self.events += 1
        self._source = event.origin.ref()
        self._host(event)
        kind = event.kind
        if kind is Kind.PROCESS_START:
            self._process_start(event)
        elif kind is Kind.PROCESS_END:
            self._process(event.process, event, full=False, end_time=event.ts)
        elif kind is Kind.FILE_WRITE:
            self._file_write(event)
        elif kind is Kind.NETWORK_CONNECT:
            self._connect(event)
        elif kind is Kind.DNS_QUERY:
            self._dns(event)

    # -- folding helpers -------------------------------------------------------------------
    def _host(self, event: Event) -> None:
        row = self.hosts.get(event.host)
        if row is None:
            self.hosts[event.host] = {
                "name": event.host,
                "fqdn": event.host_fqdn,
                "first": event.ts,
                "last": event.ts,
            }
        else:
            row["first"] = min(row["first"], event.ts)
            row["last"] = max(row["last"], event.ts)
            row["fqdn"] = row["fqdn"] or event.host_fqdn

    def _process(
        self,
        ref: ProcessRef,
        event: Event,
        *,
        full: bool,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
    ) -> None:
        current = self.processes.get(ref.uid)
        if current is None:
            self.processes[ref.uid] = {
                "uid": ref.uid,
                "full": full,
                "props": _process_props(ref, event.host),
                "start": micros(start_time or ref.start_time),
                "end": micros(end_time),
                "sources": [self._source],
            }
            return
        if full and not current["full"]:
            current["full"] = True
            current["props"] = {**current["props"], **_process_props(ref, event.host)}
            start = micros(start_time or ref.start_time)
            current["start"] = start if start is not None else current["start"]
        else:
            # Most rows are the same process seen again by its file and network events:
            # only fill what is missing, without building a second property map.
            props = current["props"]
            for key in _PROCESS_PROPS:
                if key not in props:
                    value = getattr(ref, key)
                    if value is not None:
                        props[key] = value
            if "name" not in props and (name := ref.name):
                props["name"] = name.lower()
            if current["start"] is None:
                current["start"] = micros(start_time or ref.start_time)
            if end_time is None:
                return  # a mention: the record is kept on the edge it made, not here
        if end_time is not None:
            current["end"] = micros(end_time)
        if len(current["sources"]) < MAX_SOURCES:
            current["sources"].append(self._source)

    def _process_start(self, event: Event) -> None:
        proc = event.process
        self._process(proc, event, full=True, start_time=proc.start_time or event.ts)
        if proc.image:
            self._file(event.host, proc.image)
            key = (proc.uid, file_key(event.host, proc.image))
            self.executed.setdefault(key, {"uid": key[0], "file": key[1], "time": micros(event.ts)})
        parent = event.parent
        if parent is None:
            return
        edge = {
            "parent": parent.uid,
            "child": proc.uid,
            "time": micros(event.ts),
            "source": self._source,
            "raw": _raw(event) if self.keep_raw else None,
        }
        if is_pid_only(parent.uid):
            # Known only by host and pid: resolved against the graph when written.
            edge.update(
                host=event.host,
                ppid=parent.pid,
                pimage=parent.image,
                pname=parent.name.lower() if parent.name else None,
            )
            self.spawned_by_pid.setdefault((parent.uid, proc.uid), edge)
        else:
            self._process(parent, event, full=False)
            self.spawned.setdefault((parent.uid, proc.uid), edge)

    def _file(self, host: str, path: str) -> str:
        key = file_key(host, path)
        if key not in self.files:
            name, ext = file_parts(path)
            self.files[key] = {"key": key, "host": host, "path": path, "name": name, "ext": ext}
        return key

    def _file_write(self, event: Event) -> None:
        if not event.file_path:
            return
        self._process(event.process, event, full=False)
        key = self._file(event.host, event.file_path)
        timed = self.wrote.setdefault(
            (event.process.uid, key), _Timed(extra={"ops": [], "masks": []})
        )
        timed.add(event, self.keep_raw, self._source)
        op = (event.file_op or FileOp.CREATE).value
        if op not in timed.extra["ops"]:
            timed.extra["ops"].append(op)
        if event.access_mask and event.access_mask.lower() not in timed.extra["masks"]:
            timed.extra["masks"].append(event.access_mask.lower())

    def _connect(self, event: Event) -> None:
        if not event.remote_ip:
            return
        self._process(event.process, event, full=False)
        key = connection_key(event.remote_ip, event.remote_port, event.protocol)
        if key not in self.connections:
            public, loopback = classify_ip(event.remote_ip)
            self.connections[key] = {
                "key": key,
                "ip": event.remote_ip,
                "port": event.remote_port,
                "protocol": event.protocol,
                "hostname": event.remote_hostname,
                "is_public": public,
                "is_loopback": loopback,
            }
        elif event.remote_hostname and not self.connections[key]["hostname"]:
            self.connections[key]["hostname"] = event.remote_hostname
        timed = self.connected.setdefault(
            (event.process.uid, key), _Timed(extra={"local_port": event.local_port})
        )
        timed.add(event, self.keep_raw, self._source)

    def _dns(self, event: Event) -> None:
        if not event.query_name:
            return
        self._process(event.process, event, full=False)
        name = event.query_name.lower().rstrip(".")
        self.domains.add(name)
        timed = self.resolved.setdefault((event.process.uid, name), _Timed(extra={"answers": []}))
        timed.add(event, self.keep_raw, self._source)
        for answer in event.query_results:
            if answer not in timed.extra["answers"]:
                timed.extra["answers"].append(answer)

    # -- writing ---------------------------------------------------------------------------
    def statements(self, host_times: bool = False) -> Statements:
        """Nodes before edges, rows sorted by key (consistent lock order). The creator-by-pid
        lookup comes last: the loader runs it only once the previous batch has committed, so
        a parent started in that batch is found (see graph.loader). `host_times` updates the
        hosts' first/last-seen in the same statement (else the loader writes them apart)."""

        def timed_rows(edges: dict[tuple[str, str], _Timed]) -> list[dict[str, Any]]:
            return [edges[k].row(*k) for k in sorted(edges)]

        return [
            (MERGE_HOSTS_SEEN if host_times else MERGE_HOSTS, self.host_rows()),
            (MERGE_PROCESSES, [self.processes[k] for k in sorted(self.processes)]),
            (MERGE_FILES, [self.files[k] for k in sorted(self.files)]),
            (MERGE_CONNECTIONS, [self.connections[k] for k in sorted(self.connections)]),
            (MERGE_DOMAINS, [{"name": n} for n in sorted(self.domains)]),
            (MERGE_SPAWNED, [self.spawned[k] for k in sorted(self.spawned)]),
            (MERGE_EXECUTED, [self.executed[k] for k in sorted(self.executed)]),
            (MERGE_WROTE, timed_rows(self.wrote)),
            (MERGE_CONNECTED, timed_rows(self.connected)),
            (MERGE_RESOLVED, timed_rows(self.resolved)),
            (MERGE_SPAWNED_BY_PID, [self.spawned_by_pid[k] for k in sorted(self.spawned_by_pid)]),
        ]

    def host_rows(self) -> list[dict[str, Any]]:
        return [
            {**row, "first": micros(row["first"]), "last": micros(row["last"])}
            for _, row in sorted(self.hosts.items())
        ]

    def folded(self) -> Folded:
        """The batch as rows only (small to pickle, nothing left to compute)."""
        hosts = self.host_rows()
        return Folded(
            [(q, rows) for q, rows in self.statements() if rows],
            hosts,
            self.events,
            min((h["first"] for h in self.hosts.values()), default=None),
            max((h["last"] for h in self.hosts.values()), default=None),
            self._source or None,
        )


def write_batch(graph: Graph, batch: Batch) -> None:
    """The simple path (tests, small writes, the naive benchmark): one transaction, host
    times included."""
    write_statements(
        graph, [(q, rows) for q, rows in batch.statements(host_times=True) if rows], batch.events
    )


def run_statements(tx: Transaction | ManagedTransaction, statements: Statements) -> None:
    """Run a batch's statements in a transaction the caller holds. They are sent one after
    another and consumed at the end: Neo4j executes a statement while the driver packs the
    next, instead of each waiting for the previous one's result."""
    results = [
        tx.run(query, rows=rows, max_times=MAX_TIMES, max_sources=MAX_SOURCES)
        for query, rows in statements
    ]
    for result in results:
        result.consume()


def write_statements(graph: Graph, statements: Statements, events: int) -> None:
    """One folded batch, one transaction (the folding may have happened in another process)."""
    graph.write_tx(
        lambda tx: run_statements(tx, statements), what=f"writing a batch of {events} events"
    )


def write_events(graph: Graph, events: Iterable[Event], batch_size: int = BATCH_SIZE) -> int:
    """Write events in batches; returns how many were written. Simple, single-threaded."""
    written = 0
    batch = Batch()
    for event in events:
        batch.add(event)
        if batch.events >= batch_size:
            write_batch(graph, batch)
            written += batch.events
            batch = Batch()
    if batch.events:
        write_batch(graph, batch)
        written += batch.events
    return written

"""The graph's schema, derived from the declarations in `graph.model`, and what the
provenance nodes and edges mean.

Every node key has a uniqueness constraint and every declared index exists, created
idempotently by `ensure_schema` (the API's own records and the alerts' included).

Nodes (key property first):
  (:Host       {name, fqdn, os, first_seen, last_seen})
      os = "windows", "linux" or "macos": what the source says (Sysmon's provider, Security,
      auditd, ECS host.os.type), else what the first paths seen say (ingest.model.platform_of).
  (:Process    {uid, host, pid, ppid, image, name, command_line, user, logon_id,
                start_time, end_time, parent_uid, placeholder, guid, aliases, sources,
                first_seen, named_by, named_at, facts_before})
      One node per real process, whichever sources saw it (see `graph.identity`): uid is the
      best key any of them gave (a Sysmon GUID "g:…" over an ECS entity id "e:…" over
      host + pid + start "p:host:pid:start"); aliases = the other keys records used for it
      (sorted); guid = the Sysmon ProcessGuid (lower-case, no braces) when one is known.
      name = lower-cased executable file name ("msbuild.exe"), for case-insensitive rules.
      ppid = the creator's pid, as its start record says. placeholder = true while no start
      record describes it (it is known only as someone's parent, or as the actor of its
      events); a placeholder also has first_seen, the earliest time a record showed it
      alive, and named_by / named_at, the earliest record that named it (and its time, in
      microseconds). facts_before: every timed edge from the process has its times before
      it (the latest rounded up to the next hour; absent while it has none).
  (:File       {key, host, path, name, ext,
                original_name, company, product, description, file_version, product_version,
                md5, sha1, sha256, imphash, signed, signer, signature_status, facts_time})
      key = host + "|" + lower(path); name = lower-cased base name; ext = lower-cased
      extension with its dot (".cs") or "". The PE facts (IMAGE_PROPS) are those of the
      binary at that path as process starts report it: original_name is the lower-cased
      OriginalFileName, hashes are lower-case hex; facts_time is the earliest time the facts
      in place were reported (a later record that disagrees replaces them: the binary was
      updated; an earlier one only fills gaps).
  (:Connection {key, ip, port, protocol, hostname, is_public, is_loopback})
      A remote endpoint; key = ip + "|" + port + "|" + protocol. Shared across hosts. The
      peer of an accepted (inbound) connection is keyed without its port (ip + "||" +
      protocol; port null): a client's ephemeral port names nothing worth a node.
  (:Domain     {name})  a DNS name queried by a process.
  (:Alert      {id, ...})  written by the rule engine (queries/).

Edges (all times are Neo4j DateTime, UTC):
  (:Process)-[:ON_HOST]->(:Host)
  (:Process)-[:SPAWNED {time, source}]->(:Process)
      time = the child's start as the earliest record of it says; source = that record.
  (:Process)-[:EXECUTED {time}]->(:File)
      the image a process was started from; its PE facts and hashes are on the File.
  Timed edges, one per (process, target), each with
      {first_time, last_time, count, times, hours, sources}:
  (:Process)-[:WROTE {… ops, access_masks}]->(:File)
      ops: distinct operations ("create", "modify", "rename", "delete"); access_masks:
      distinct lower-case Security 4663 masks ("0x6").
  (:Process)-[:CONNECTED_TO {… local_port}]->(:Connection)   outbound: the process connected
  (:Process)-[:ACCEPTED {… local_ports}]->(:Connection)      inbound: the peer connected to
      the process, on its listening port(s) local_ports; the Connection is the peer.
  (:Process)-[:RESOLVED {… answers}]->(:Domain)
  (:Alert)-[:INVOLVES {role}]->(entity)

Timed edges: first_time / last_time are exact for the edge's whole life; times holds every
distinct time of the most recent MAX_TIMES (newest kept, so a long-lived process never goes
blind to new activity); hours holds every UTC hour (its start) with at least one event, for
the whole life, from the moment the list first overflows (absent before: the times say it
all), so a window older than `times` can still be answered, to the hour. count is the number
of distinct times, exact under re-ingest and retries: a time older than a full `times` list
is taken as one already counted (true for every re-ingest and retry; an event first ingested
after MAX_TIMES newer ones on the same edge is not counted).

`sources` are "source:path:line" references to the raw records (first MAX_SOURCES kept).
A Process's own sources are the records that describe it: its start and its end (and, for
a placeholder, the earliest record that named it); what it did is traced by the sources on
its edges.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from provgraph.graph.model import NODES

if TYPE_CHECKING:
    from provgraph.graph.tx import Graph

MAX_TIMES = 1000
MAX_SOURCES = 20


def schema_statements() -> list[str]:
    """Constraint and index DDL for every declared node (`graph.model`): labels and property
    names come from the declarations, never from input."""
    statements = [
        f"CREATE CONSTRAINT {node.constraint_name} IF NOT EXISTS "
        f"FOR (n:{node.label}) REQUIRE n.{node.key} IS UNIQUE"
        for node in NODES
    ]
    statements += [
        f"CREATE INDEX {node.index_name(index)} IF NOT EXISTS FOR (n:{node.label}) "
        f"ON ({', '.join('n.' + p for p in index.properties)})"
        for node in NODES
        for index in node.indexes
    ]
    return statements


# Indexes earlier versions created that the declarations replaced: Process(pid) alone, which
# every host's pid 4 shared, gave way to the composite (host, pid) identity looks up by.
RETIRED_INDEXES = ("process_pid",)


# A graph written before processes kept facts_before (graph.writer) gets it once, from its
# edges, in bounded transactions. The index on it is the mark: a graph without it was written
# before facts_before, so its processes are filled before the index is made (a fill cut short
# leaves the index unmade and the next start-up fills the rest; an empty graph has nothing to
# fill). Until then the host timeline would leave those processes' facts out.
FACTS_BEFORE_INDEX = ("host", "facts_before", "start_time")
FILL_FACTS_BEFORE = """
MATCH (p:Process) WHERE p.facts_before IS NULL
CALL (p) {
  MATCH (p)-[r]->() WHERE r.last_time IS NOT NULL
  WITH max(r.last_time) AS last WHERE last IS NOT NULL
  SET p.facts_before = datetime.truncate('hour', last) + duration({hours: 1})
} IN TRANSACTIONS OF 10000 ROWS
"""
INDEX_NAMES = "SHOW INDEXES YIELD name RETURN collect(name) AS names"
ANY_PROCESS = "MATCH (p:Process) RETURN true AS found LIMIT 1"


def _fill_facts_before(graph: Graph) -> None:
    process = next(n for n in NODES if n.label == "Process")
    index = next(i for i in process.indexes if i.properties == FACTS_BEFORE_INDEX)
    if process.index_name(index) in graph.read(INDEX_NAMES)[0]["names"]:
        return
    if graph.read(ANY_PROCESS):
        graph.write_autocommit(FILL_FACTS_BEFORE)


def ensure_schema(graph: Graph) -> None:
    """Idempotent: safe at every start-up."""
    _fill_facts_before(graph)  # before the index that marks it done is made
    for statement in schema_statements():
        graph.write(statement)
    for name in RETIRED_INDEXES:
        graph.write(f"DROP INDEX {name} IF EXISTS")
    graph.write("CALL db.awaitIndexes(300)")


def has_node_keys(graph: Graph) -> bool:
    """Whether every node key the writer MERGEs on has its uniqueness constraint (online).
    Concurrent writers rely on them: without one, two transactions MERGEing the same key both
    create a node."""
    rows = graph.read(
        "SHOW CONSTRAINTS YIELD type, labelsOrTypes, properties "
        "WHERE type = 'UNIQUENESS' "
        "RETURN labelsOrTypes[0] AS label, properties AS props"
    )
    present = {(r["label"], tuple(r["props"])) for r in rows}
    return all((n.label, (n.key,)) in present for n in NODES if n.owner == "graph")

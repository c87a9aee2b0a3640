"""The graph's schema, derived from the declarations in `graph.model`, and what the
provenance nodes and edges mean.

Every node key has a uniqueness constraint and every declared index exists, created
idempotently by `ensure_schema` (the API's own records and the alerts' included).

Nodes (key property first):
  (:Host       {name, fqdn, first_seen, last_seen})
  (:Process    {uid, host, pid, image, name, command_line, user, logon_id,
                start_time, end_time, parent_uid, placeholder, sources})
      name = lower-cased executable file name ("msbuild.exe"), for case-insensitive rules.
      placeholder = true while the process is known only as someone's parent.
  (:File       {key, host, path, name, ext})
      key = host + "|" + lower(path); name = lower-cased base name; ext = lower-cased
      extension with its dot (".cs") or "".
  (:Connection {key, ip, port, protocol, hostname, is_public, is_loopback})
      The remote endpoint; key = ip + "|" + port + "|" + protocol. Shared across hosts.
  (:Domain     {name})  a DNS name queried by a process.
  (:Alert      {id, ...})  written by the rule engine (queries/).

Edges (all times are Neo4j DateTime, UTC):
  (:Process)-[:ON_HOST]->(:Host)
  (:Process)-[:SPAWNED {time, source}]->(:Process)
  (:Process)-[:EXECUTED {time}]->(:File)          the image a process was started from
  (:Process)-[:WROTE {first_time, last_time, count, times, ops, access_masks, sources}]->(:File)
      times: every distinct write time (capped at MAX_TIMES, oldest kept); ops: distinct
      operations ("create", "modify", "rename", "delete"); access_masks: distinct
      lower-case Security 4663 masks ("0x6").
  (:Process)-[:CONNECTED_TO {first_time, last_time, count, times, local_port, sources}]
      ->(:Connection)
  (:Process)-[:RESOLVED {first_time, last_time, count, answers}]->(:Domain)
  (:Alert)-[:INVOLVES {role}]->(entity)

`sources` are "source:path:line" references to the raw records (first MAX_SOURCES kept).
A Process's own sources are the records that describe it: its start, its end, and the
record that first named it; what it did is traced by the sources on its edges.
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


def ensure_schema(graph: Graph) -> None:
    """Idempotent: safe at every start-up."""
    for statement in schema_statements():
        graph.write(statement)
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

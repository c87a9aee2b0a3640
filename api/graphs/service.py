"""Bounded walks over the provenance graph: an alert's subgraph, any node's neighbourhood.

Walks go level by level from a frontier of element ids, one query per level and direction,
each capped per node, so a process that wrote ten thousand files cannot blow the budget of
the whole walk in one query. Host nodes are leaves: everything on a host hangs off them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from api.nodes import BULKY, PROVENANCE_RELS, parse_node_id
from api.values import utc_text
from graph.tx import Graph

# Properties as the walk returns them: bulky values left out (api.nodes.BULKY; the evidence
# endpoints carry them), times as UTC text. Projected on the server, so the client decodes
# plain maps and strings rather than hydrating DateTimes one by one.
def _projection(var: str, times: tuple[str, ...], extra: str = "") -> str:
    return (var + " {.*, " + ", ".join(f"{b}: null" for b in sorted(BULKY)) + ", "
            + ", ".join(utc_text(var, p) for p in times) + extra + "}")


# A node's source list (up to 20 record references, one per event of a process) was half the
# bytes of a large subgraph and repeats what its edges say: views carry the first few and the
# count; the provenance endpoints carry them all.
NODE_SOURCES = 3
NODE_PROPS = _projection(
    "m", ("start_time", "end_time", "first_seen", "last_seen"),
    f", sources: m.sources[0..{NODE_SOURCES}], sources_count: size(m.sources)")
REL_PROPS = _projection("r", ("time", "first_time", "last_time"))
ALERT_PROPS = _projection("a", ("first_seen", "last_seen", "created_at", "updated_at"))

_EXPAND_RETURN = """
RETURN fid AS from_id, elementId(r) AS rid, type(r) AS rel,
       elementId(startNode(r)) AS start, elementId(endNode(r)) AS end,
       """ + REL_PROPS + """ AS rprops, elementId(m) AS mid, labels(m) AS labels,
       """ + NODE_PROPS + """ AS props
LIMIT $total
"""

EXPAND_OUT = """
UNWIND $frontier AS fid
MATCH (n) WHERE elementId(n) = fid
CALL (n) {
  MATCH (n)-[r]->(m) WHERE type(r) IN $types
  RETURN r, m LIMIT $per_node
}
""" + _EXPAND_RETURN

EXPAND_IN = """
UNWIND $frontier AS fid
MATCH (n) WHERE elementId(n) = fid
CALL (n) {
  MATCH (n)<-[r]-(m) WHERE type(r) IN $types
  RETURN r, m LIMIT $per_node
}
""" + _EXPAND_RETURN

EXPAND_BOTH = """
UNWIND $frontier AS fid
MATCH (n) WHERE elementId(n) = fid
CALL (n) {
  MATCH (n)-[r]-(m) WHERE type(r) IN $types
  RETURN r, m LIMIT $per_node
}
""" + _EXPAND_RETURN

# Edges among nodes already in the result that the walk did not traverse (e.g. two
# processes in the tree that wrote the same file).
EDGES_AMONG = """
UNWIND $ids AS id
MATCH (n)-[r]->(m) WHERE elementId(n) = id AND type(r) IN $types AND elementId(m) IN $ids
  AND NOT elementId(r) IN $known
RETURN elementId(r) AS rid, type(r) AS rel, elementId(n) AS start, elementId(m) AS end,
       """ + REL_PROPS + """ AS rprops
LIMIT $limit
"""

# The alert and at most $limit of its entities (an aggregated alert can name a thousand
# processes): hosts, files and connections before processes, so the cut keeps the context.
ALERT_ROOTS = """
MATCH (a:Alert {id: $id})
CALL (a) {
  OPTIONAL MATCH (a)-[r:INVOLVES]->(m)
  WITH r, m ORDER BY CASE WHEN m:Process THEN 1 ELSE 0 END, elementId(m)
  LIMIT $limit
  RETURN collect(CASE WHEN m IS NULL THEN null ELSE
                 {rid: elementId(r), eid: elementId(m), labels: labels(m), props: """ + NODE_PROPS + """,
                  rprops: properties(r)} END) AS entities
}
RETURN elementId(a) AS aid, labels(a) AS alabels, """ + ALERT_PROPS + """ AS aprops, entities,
       COUNT { (a)-[:INVOLVES]->() } AS total
"""

# One statement per label, the label coming from the whitelist in api.nodes.
FIND_NODE = {
    label: f"MATCH (n:{label} {{{key}: $key}}) "
    "RETURN elementId(n) AS eid, labels(n) AS labels, properties(n) AS props"
    for label, key in {"Host": "name", "Process": "uid", "File": "key", "Connection": "key",
                       "Domain": "name", "Alert": "id"}.items()
}

ARTIFACT_RELS = ["WROTE", "EXECUTED", "CONNECTED_TO", "RESOLVED"]


class NodeNotFound(LookupError):
    pass


@dataclass
class Subgraph:
    max_nodes: int
    nodes: dict[str, tuple[list[str], dict[str, Any]]] = field(default_factory=dict)
    edges: dict[str, tuple[str, str, str, dict[str, Any]]] = field(default_factory=dict)
    roots: list[str] = field(default_factory=list)
    truncated: bool = False

    def add_node(self, eid: str, labels: list[str], props: dict[str, Any]) -> bool:
        """False when the node budget is spent (and marks the result truncated)."""
        if eid in self.nodes:
            return True
        if len(self.nodes) >= self.max_nodes:
            self.truncated = True
            return False
        self.nodes[eid] = (labels, props)
        return True

    def add_edge(self, rid: str, rel: str, start: str, end: str, props: dict[str, Any]) -> None:
        if start in self.nodes and end in self.nodes:
            self.edges[rid] = (rel, start, end, props)

    def is_host(self, eid: str) -> bool:
        return "Host" in self.nodes[eid][0]


def _expand(graph: Graph, sub: Subgraph, query: str, frontier: Sequence[str],
            types: Iterable[str]) -> list[str]:
    """One level: adds neighbours (within budget) and edges; returns the newly added ids."""
    if not frontier or sub.truncated:
        return []
    per_node = sub.max_nodes - len(sub.nodes) + 1  # one more than fits tells us we cut
    # No level can add more than the budget left, so no level needs more rows than that (plus
    # one edge back per frontier node): a frontier of dense processes cannot flood the client.
    rows = graph.read_plain(query, frontier=list(frontier), types=list(types),
                            per_node=per_node, total=per_node + len(frontier))
    added: list[str] = []
    for row in rows:
        fresh = row["mid"] not in sub.nodes
        if sub.add_node(row["mid"], row["labels"], row["props"]) and fresh:
            added.append(row["mid"])
        sub.add_edge(row["rid"], row["rel"], row["start"], row["end"], row["rprops"])
    return added


def _walk(graph: Graph, sub: Subgraph, query: str, start: Sequence[str], types: Sequence[str],
          levels: int, *, through_hosts: bool = False) -> None:
    frontier = list(start)
    for _ in range(levels):
        if not through_hosts:
            frontier = [eid for eid in frontier if not sub.is_host(eid)]
        frontier = _expand(graph, sub, query, frontier, types)
        if not frontier:
            return
    if frontier and not sub.truncated:
        # The depth limit stopped a walk that had more to give.
        more = graph.read_plain(query, frontier=frontier, types=list(types), per_node=1,
                                total=len(frontier))
        if any(r["mid"] not in sub.nodes for r in more):
            sub.truncated = True


# Edges the closing pass may add, per node of the budget. Twice the nodes is already a dense
# picture (a build host's hundred restores all writing the same twenty files gave 2,000 such
# edges among 300 nodes); past it the result says `truncated`.
EDGES_PER_NODE = 2


def _close_edges(graph: Graph, sub: Subgraph) -> None:
    cap = sub.max_nodes * EDGES_PER_NODE
    rows = graph.read_plain(EDGES_AMONG, ids=list(sub.nodes), types=list(PROVENANCE_RELS),
                            known=list(sub.edges), limit=cap + 1)
    if len(rows) > cap:
        sub.truncated = True
        rows = rows[:cap]
    for row in rows:
        sub.add_edge(row["rid"], row["rel"], row["start"], row["end"], row["rprops"])


def alert_subgraph(graph: Graph, *, alert_id: str, depth: int = 3, ancestry: int = 64,
                   max_nodes: int = 500) -> Subgraph:
    """The alert, its entities, their ancestry to the root and their descendants."""
    budget = max(max_nodes, 1)
    rows = graph.read_plain(ALERT_ROOTS, id=alert_id, limit=budget - 1)
    if not rows:
        raise NodeNotFound(f"alert {alert_id}")
    row = rows[0]
    sub = Subgraph(max_nodes=budget)
    sub.add_node(row["aid"], row["alabels"], row["aprops"])
    sub.roots.append(row["aid"])
    entities = [e for e in row["entities"] if e is not None]
    if row["total"] > len(entities):
        sub.truncated = True
    for entity in entities:
        if sub.add_node(entity["eid"], entity["labels"], entity["props"]):
            sub.add_edge(entity["rid"], "INVOLVES", row["aid"], entity["eid"], entity["rprops"])
    processes = [e["eid"] for e in entities if "Process" in e["labels"] and e["eid"] in sub.nodes]
    # Who wrote or ran the files the alert names. Files are keyed per host; connections and
    # domains are shared by every host that contacted them, so expanding those would pull in
    # unrelated processes from across the estate (the processes that matter are entities).
    artifacts = [e["eid"] for e in entities if "File" in e["labels"] and e["eid"] in sub.nodes]
    actors = _expand(graph, sub, EXPAND_IN, artifacts, ARTIFACT_RELS)
    processes += [eid for eid in actors if "Process" in sub.nodes[eid][0]]
    _walk(graph, sub, EXPAND_IN, processes, ["SPAWNED"], ancestry)
    _walk(graph, sub, EXPAND_OUT, processes, list(PROVENANCE_RELS), depth)
    _close_edges(graph, sub)
    return sub


def find_node(graph: Graph, *, node: str) -> tuple[str, list[str], dict[str, Any]]:
    parsed = parse_node_id(node)
    if parsed is None or parsed[0] not in FIND_NODE:
        raise NodeNotFound(node)
    label, _key, value = parsed
    rows = graph.read(FIND_NODE[label], key=value)
    if not rows:
        raise NodeNotFound(node)
    return rows[0]["eid"], rows[0]["labels"], rows[0]["props"]


def neighbourhood(graph: Graph, *, node: str, depth: int = 1, max_nodes: int = 500,
                  rels: Sequence[str] | None = None) -> Subgraph:
    """Everything within `depth` hops of one node, both directions, Hosts as leaves
    (unless the walk starts at a host)."""
    eid, labels, props = find_node(graph, node=node)
    sub = Subgraph(max_nodes=max(max_nodes, 1))
    sub.add_node(eid, labels, props)
    sub.roots.append(eid)
    types = list(rels) if rels else [*PROVENANCE_RELS, "INVOLVES", "ON_HOST"]
    if "Host" in labels:
        # From a host: its processes first, then walk on from them.
        first = _expand(graph, sub, EXPAND_BOTH, [eid], types)
        _walk(graph, sub, EXPAND_BOTH, first, [t for t in types if t != "ON_HOST"], depth - 1)
    else:
        _walk(graph, sub, EXPAND_BOTH, [eid], types, depth)
    _close_edges(graph, sub)
    return sub

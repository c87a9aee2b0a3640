"""Bounded walks over the provenance graph: an alert's subgraph, any node's neighbourhood.
The API's graph endpoints render them (Cytoscape.js, GraphML: api/graphs/export.py).

Walks go level by level from a frontier of element ids, one query per level and direction,
each capped per node, so a process that wrote ten thousand files cannot blow the budget of
the whole walk in one query. Host nodes are leaves: everything on a host hangs off them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from neo4j import ManagedTransaction
from provgraph.core.times import EPOCH
from provgraph.graph.model import BY_LABEL, EDGES
from provgraph.graph.tx import Graph, plain_rows
from provgraph.graph.values import utc_text
from provgraph.queries.errors import AlertNotFound, NodeNotFound
from provgraph.queries.nodes import BULKY, NODE_LABELS, PROVENANCE_RELS, parse_node_id


# Properties as the walk returns them: bulky values left out (nodes.BULKY; the evidence
# endpoints carry them), times as text. Projected on the server, so the client decodes plain
# maps and strings: hydrating DateTimes in the Python driver made a 1,000-edge read 5x slower.
# The writer stores every node and edge time in UTC ('Z'), so toString() is already the ISO
# text the API serves, and cheaper than utc_text's conversion (which alerts still use: their
# times also come from elsewhere).
def _projection(var: str, times: tuple[str, ...], extra: str = "", *, utc: bool = True) -> str:
    stamp = utc_text if utc else (lambda v, p: f"{p}: toString({v}.{p})")
    return (
        var
        + " {.*, "
        + ", ".join(f"{b}: null" for b in sorted(BULKY))
        + ", "
        + ", ".join(stamp(var, p) for p in times)
        + extra
        + "}"
    )


# A node's source list (up to 20 record references, one per event of a process) was half the
# bytes of a large subgraph and repeats what its edges say: views carry the first few and the
# count; the provenance endpoints carry them all.
NODE_SOURCES = 3
# Every time property a walked node can hold (a File's `facts_time`, a Service's
# `installed_time` …), from the model: one left out crossed as a DateTime, and the files a
# process wrote made DateTime hydration a fifth of a subgraph request's API time.
_WALKED = {label for e in EDGES if e.provenance for label in (e.start, e.end)} & set(BY_LABEL)
NODE_TIMES = tuple(
    sorted(
        {"start_time", "end_time", "first_seen", "last_seen"}.union(
            *(BY_LABEL[label].times for label in _WALKED)
        )
        - BULKY
    )
)
NODE_PROPS = _projection(
    "m",
    NODE_TIMES,
    f", sources: m.sources[0..{NODE_SOURCES}], sources_count: size(m.sources)",
    utc=False,
)
REL_PROPS = _projection("r", ("time", "first_time", "last_time"), utc=False)
ALERT_PROPS = _projection("a", ("first_seen", "last_seen", "created_at", "updated_at"))

# Every walk query answers with one row holding lists: the Python driver spends about 10 µs
# of CPU per record it decodes, so 2,000 edge records cost 22 ms of client CPU where the same
# values as one list cost under 5 ms (and a loaded API is CPU-bound). Each neighbour's
# properties come once per level however many edges reach it (a hundred restores writing the
# same file), and an edge says which way it points rather than repeating both end ids.
_EXPAND_RETURN = (
    """
WITH fid, n, r, m LIMIT $total
WITH collect([fid, elementId(r), type(r), startNode(r) = n, """
    + REL_PROPS
    + """,
              elementId(m)]) AS edges,
     collect(DISTINCT m) AS found
RETURN edges, [m IN found | [elementId(m), labels(m), """
    + NODE_PROPS
    + """]] AS nodes
"""
)


def _expand_query(pattern: str) -> str:
    return (
        """
UNWIND $frontier AS fid
MATCH (n) WHERE elementId(n) = fid
CALL (n) {
  MATCH """
        + pattern
        + """ WHERE type(r) IN $types
  RETURN r, m LIMIT $per_node
}
"""
        + _EXPAND_RETURN
    )


def _beyond_query(pattern: str) -> str:
    """Whether any frontier node has a neighbour outside the result (the depth limit cut)."""
    return (
        """
UNWIND $frontier AS fid
MATCH (n) WHERE elementId(n) = fid
MATCH """
        + pattern
        + """ WHERE type(r) IN $types AND NOT elementId(m) IN $known
RETURN true AS more
LIMIT 1
"""
    )


@dataclass(frozen=True)
class Direction:
    """One way to walk: the level query and the depth-limit check, from one pattern."""

    expand: str
    beyond: str

    @classmethod
    def of(cls, pattern: str) -> Direction:
        return cls(_expand_query(pattern), _beyond_query(pattern))


OUT = Direction.of("(n)-[r]->(m)")
IN = Direction.of("(n)<-[r]-(m)")
BOTH = Direction.of("(n)-[r]-(m)")

# -- a process's many small facts, summarised -----------------------------------------------------
# What a process did to things that are not processes: files written and run, addresses
# contacted, names resolved, and whatever edge types graph v2 declares (image loads, registry
# values). Derived from the model, so a new provenance edge type is summarised without a change
# here. Up to FACTS_INLINE of one kind come whole; past that the walk returns the count (a
# `Group` in the views) and `facts_page` serves the members page by page when a reader opens it.
FACT_RELS: tuple[str, ...] = tuple(e.type for e in EDGES if e.provenance and e.end != "Process")
FACT_TARGETS: dict[str, str] = {e.type: e.end for e in EDGES if e.type in FACT_RELS}
FACTS_INLINE = 5

# Per frontier node: its count of each kind (from the degree store, no edge is read), and the
# kinds small enough to ship whole. The count is taken before the expand, so a node with ten
# thousand writes costs one degree lookup, not ten thousand edge reads.
FACTS = (
    """
UNWIND $frontier AS fid
MATCH (n) WHERE elementId(n) = fid
WITH fid, n, ["""
    + ", ".join(f"COUNT {{ (n)-[:{t}]->() }}" for t in FACT_RELS)
    + """] AS counts
CALL (n, counts) {
  CALL (n, counts) {
"""
    + "\n    UNION ALL\n".join(
        f"    MATCH (n)-[r:{t}]->(m) WHERE counts[{i}] <= $inline AND '{t}' IN $types "
        "RETURN r, m LIMIT $inline"
        for i, t in enumerate(FACT_RELS)
    )
    + """
  }
  RETURN collect([elementId(r), type(r), """
    + REL_PROPS
    + """, elementId(m), labels(m), """
    + NODE_PROPS
    + """]) AS found
}
RETURN collect([fid, counts, found]) AS rows
"""
)

# Every ancestor of the frontier up to $hops, in one query rather than one per level (a chain
# of forty creators was forty round trips): each with the SPAWNED edge to the child below it,
# and whether the chain goes on above the bound.
ANCESTRY = (
    """
UNWIND $frontier AS fid
MATCH (n) WHERE elementId(n) = fid
MATCH path = (n)<-[:SPAWNED*1..64]-(m)
WHERE length(path) <= $hops
WITH path, m, relationships(path)[-1] AS r, nodes(path)[-2] AS child
ORDER BY length(path)
RETURN collect([elementId(m), labels(m), """
    + NODE_PROPS
    + """, elementId(r), """
    + REL_PROPS
    + """, elementId(child),
                length(path) = $hops AND EXISTS { (m)<-[:SPAWNED]-() }]) AS rows
"""
)

# Edges among nodes already in the result that the walk did not traverse (e.g. two
# processes in the tree that wrote the same file).
EDGES_AMONG = (
    """
UNWIND $ids AS id
MATCH (n)-[r]->(m) WHERE elementId(n) = id AND type(r) IN $types AND elementId(m) IN $ids
  AND NOT elementId(r) IN $known
WITH n, r, m LIMIT $limit
RETURN collect([elementId(r), type(r), elementId(n), elementId(m), """
    + REL_PROPS
    + """]) AS rows
"""
)

# The alert and at most $limit of its entities (an aggregated alert can name a thousand
# processes): hosts, files and connections before processes, so the cut keeps the context.
ALERT_ROOTS = (
    """
MATCH (a:Alert {id: $id})
CALL (a) {
  OPTIONAL MATCH (a)-[r:INVOLVES]->(m)
  WITH r, m ORDER BY CASE WHEN m:Process THEN 1 ELSE 0 END, elementId(m)
  LIMIT $limit
  RETURN collect(CASE WHEN m IS NULL THEN null ELSE
                 {rid: elementId(r), eid: elementId(m), labels: labels(m), props: """
    + NODE_PROPS
    + """,
                  rprops: properties(r)} END) AS entities
}
RETURN elementId(a) AS aid, labels(a) AS alabels, """
    + ALERT_PROPS
    + """ AS aprops, entities,
       COUNT { (a)-[:INVOLVES]->() } AS total
"""
)

# One statement per label a client may name (the whitelist in queries.nodes).
FIND_NODE = {
    label: f"MATCH (n:{label} {{{key}: $key}}) "
    "RETURN elementId(n) AS eid, labels(n) AS labels, properties(n) AS props"
    for label, key in NODE_LABELS.items()
}

# What a process did to things that are not processes: every provenance edge but SPAWNED.
ARTIFACT_RELS = [r for r in PROVENANCE_RELS if r != "SPAWNED"]


@dataclass
class Subgraph:
    max_nodes: int
    nodes: dict[str, tuple[list[str], dict[str, Any]]] = field(default_factory=dict)
    edges: dict[str, tuple[str, str, str, dict[str, Any]]] = field(default_factory=dict)
    roots: list[str] = field(default_factory=list)
    truncated: bool = False
    # (element id, relationship type) -> how many such edges leave the node: its facts of one
    # kind, summarised rather than shipped (see FACT_RELS). Each takes one place of the budget.
    groups: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def room(self) -> int:
        return self.max_nodes - len(self.nodes) - len(self.groups)

    def add_node(self, eid: str, labels: list[str], props: dict[str, Any]) -> bool:
        """False when the node budget is spent (and marks the result truncated)."""
        if eid in self.nodes:
            return True
        if self.room <= 0:
            self.truncated = True
            return False
        self.nodes[eid] = (labels, props)
        return True

    def add_group(self, eid: str, rel: str, count: int) -> bool:
        if (eid, rel) in self.groups:
            return True
        if self.room <= 0:
            self.truncated = True
            return False
        self.groups[(eid, rel)] = count
        return True

    def add_edge(self, rid: str, rel: str, start: str, end: str, props: dict[str, Any]) -> None:
        if start in self.nodes and end in self.nodes:
            self.edges[rid] = (rel, start, end, props)

    def is_host(self, eid: str) -> bool:
        return "Host" in self.nodes[eid][0]


class _Reads:
    """The walk's queries, all in one read transaction: one BEGIN and COMMIT per subgraph
    rather than per query (under load, those round trips were a third of the API process's
    profile samples)."""

    def __init__(self, tx: ManagedTransaction) -> None:
        self.tx = tx

    def rows(self, query: str, **params: Any) -> list[dict[str, Any]]:
        return plain_rows(self.tx, query, params)

    def listed(self, query: str, **params: Any) -> list[list[Any]]:
        """The rows of a query that returns them as one list (see _EXPAND_RETURN)."""
        found = self.rows(query, **params)
        return found[0]["rows"] if found else []


def _expand(
    q: _Reads, sub: Subgraph, way: Direction, frontier: Sequence[str], types: Iterable[str]
) -> list[str]:
    """One level: adds neighbours (within budget) and edges; returns the newly added ids."""
    if not frontier or sub.truncated:
        return []
    per_node = sub.room + 1  # one more than fits tells us we cut
    # No level can add more than the budget left, so no level needs more rows than that (plus
    # one edge back per frontier node): a frontier of dense processes cannot flood the client.
    found = q.rows(
        way.expand,
        frontier=list(frontier),
        types=list(types),
        per_node=per_node,
        total=per_node + len(frontier),
    )
    if not found:
        return []
    nodes = {mid: (labels, props) for mid, labels, props in found[0]["nodes"]}
    added: list[str] = []
    for fid, rid, rel, outward, rprops, mid in found[0]["edges"]:
        fresh = mid not in sub.nodes
        if sub.add_node(mid, *nodes[mid]) and fresh:
            added.append(mid)
        start, end = (fid, mid) if outward else (mid, fid)
        sub.add_edge(rid, rel, start, end, rprops)
    return added


def _facts(q: _Reads, sub: Subgraph, frontier: Sequence[str], types: Sequence[str]) -> list[str]:
    """The frontier's facts of the given kinds: small kinds whole, big ones as counts.
    Returns the ids of the nodes it added."""
    wanted = [t for t in types if t in FACT_RELS]
    if not frontier or not wanted or sub.truncated:
        return []
    added: list[str] = []
    for fid, counts, found in q.listed(
        FACTS, frontier=list(frontier), types=wanted, inline=FACTS_INLINE
    ):
        for rel, total in zip(FACT_RELS, counts, strict=True):
            if rel in wanted and total > FACTS_INLINE and not sub.add_group(fid, rel, total):
                return added
        for rid, rel, rprops, mid, labels, props in found:
            fresh = mid not in sub.nodes
            if not sub.add_node(mid, labels, props):
                return added
            if fresh:
                added.append(mid)
            sub.add_edge(rid, rel, fid, mid, rprops)
    return added


def _level(
    q: _Reads, sub: Subgraph, way: Direction, frontier: Sequence[str], types: Sequence[str]
) -> list[str]:
    """One level of a walk: a node's facts (OUT along FACT_RELS) are summarised, every other
    edge followed as it is."""
    facts = [t for t in types if t in FACT_RELS] if way is not IN else []
    if not facts:
        return _expand(q, sub, way, frontier, types)
    rest = [t for t in types if t not in FACT_RELS]
    added = _expand(q, sub, IN, frontier, types) if way is BOTH else []
    if rest:
        added += _expand(q, sub, OUT, frontier, rest)
    return added + _facts(q, sub, frontier, facts)


def _ancestry(q: _Reads, sub: Subgraph, start: Sequence[str], hops: int) -> None:
    """Every creator above the processes, nearest first, within the budget."""
    if not start:
        return
    if hops <= 0:  # none asked for: only whether there is any
        if q.rows(IN.beyond, frontier=list(start), types=["SPAWNED"], known=list(sub.nodes)):
            sub.truncated = True
        return
    cut: list[str] = []  # ancestors at the bound that have a creator above them
    for mid, labels, props, rid, rprops, child, more in q.listed(
        ANCESTRY, frontier=list(start), hops=min(hops, 64)
    ):
        if not sub.add_node(mid, labels, props):
            return
        sub.add_edge(rid, "SPAWNED", mid, child, rprops)
        if more:
            cut.append(mid)
    # Cut short only if what lies above is not in the result already.
    if cut and q.rows(IN.beyond, frontier=cut, types=["SPAWNED"], known=list(sub.nodes)):
        sub.truncated = True


def _walk(
    q: _Reads,
    sub: Subgraph,
    way: Direction,
    start: Sequence[str],
    types: Sequence[str],
    levels: int,
    *,
    through_hosts: bool = False,
) -> None:
    def onward(ids: Sequence[str]) -> list[str]:
        return list(ids) if through_hosts else [eid for eid in ids if not sub.is_host(eid)]

    frontier = onward(start)
    for _ in range(levels):
        if not frontier:
            return
        frontier = onward(_level(q, sub, way, frontier, types))
    # The depth limit stopped a walk that had more to give?
    if (
        frontier
        and not sub.truncated
        and q.rows(way.beyond, frontier=frontier, types=list(types), known=list(sub.nodes))
    ):
        sub.truncated = True


# Edges the closing pass may add, per node of the budget. Twice the nodes is already a dense
# picture (a build host's hundred restores all writing the same twenty files gave 2,000 such
# edges among 300 nodes); past it the result says `truncated`.
EDGES_PER_NODE = 2


def _close_edges(q: _Reads, sub: Subgraph) -> None:
    cap = sub.max_nodes * EDGES_PER_NODE
    rows = q.listed(
        EDGES_AMONG,
        ids=list(sub.nodes),
        types=list(PROVENANCE_RELS),
        known=list(sub.edges),
        limit=cap + 1,
    )
    if len(rows) > cap:
        sub.truncated = True
        rows = rows[:cap]
    for rid, rel, start, end, rprops in rows:
        sub.add_edge(rid, rel, start, end, rprops)


def alert_subgraph(
    graph: Graph, *, alert_id: str, depth: int = 3, ancestry: int = 64, max_nodes: int = 500
) -> Subgraph:
    """The alert, its entities, their ancestry to the root and their descendants."""
    return graph.read_tx(
        lambda tx: _alert_subgraph(_Reads(tx), alert_id, depth, ancestry, max_nodes),
        what="walking a subgraph",
    )


def _alert_subgraph(
    q: _Reads, alert_id: str, depth: int, ancestry: int, max_nodes: int
) -> Subgraph:
    budget = max(max_nodes, 1)
    rows = q.rows(ALERT_ROOTS, id=alert_id, limit=budget - 1)
    if not rows:
        raise AlertNotFound(alert_id)
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
    actors = _expand(q, sub, IN, artifacts, ARTIFACT_RELS)
    processes += [eid for eid in actors if "Process" in sub.nodes[eid][0]]
    _ancestry(q, sub, processes, ancestry)
    _walk(q, sub, OUT, processes, list(PROVENANCE_RELS), depth)
    _close_edges(q, sub)
    return sub


def _find_node(q: _Reads, node: str) -> tuple[str, list[str], dict[str, Any]]:
    parsed = parse_node_id(node)
    if parsed is None or parsed[0] not in FIND_NODE:
        raise NodeNotFound(node)
    label, _key, value = parsed
    rows = q.rows(FIND_NODE[label], key=value)
    if not rows:
        raise NodeNotFound(node)
    return rows[0]["eid"], rows[0]["labels"], rows[0]["props"]


def neighbourhood(
    graph: Graph,
    *,
    node: str,
    depth: int = 1,
    max_nodes: int = 500,
    rels: Sequence[str] | None = None,
) -> Subgraph:
    """Everything within `depth` hops of one node, both directions, Hosts as leaves
    (unless the walk starts at a host)."""
    return graph.read_tx(
        lambda tx: _neighbourhood(_Reads(tx), node, depth, max_nodes, rels),
        what="walking a subgraph",
    )


def _neighbourhood(
    q: _Reads, node: str, depth: int, max_nodes: int, rels: Sequence[str] | None
) -> Subgraph:
    eid, labels, props = _find_node(q, node)
    sub = Subgraph(max_nodes=max(max_nodes, 1))
    sub.add_node(eid, labels, props)
    sub.roots.append(eid)
    types = list(rels) if rels else [*PROVENANCE_RELS, "INVOLVES", "ON_HOST"]
    if "Host" in labels:
        # From a host: its processes first, then walk on from them.
        first = _level(q, sub, BOTH, [eid], types)
        _walk(q, sub, BOTH, first, [t for t in types if t != "ON_HOST"], depth - 1)
    else:
        _walk(q, sub, BOTH, [eid], types, depth)
    _close_edges(q, sub)
    return sub


# -- the shortest provenance path between two nodes ----------------------------------------------
# Either direction along the provenance edges (a file one process wrote and another ran links
# them), never through a Host: every process is two hops from every other one there. The
# length bound cannot be a query parameter in Cypher, so each allowed bound has its statement.
MAX_PATH_HOPS = 12
_PATH_NODE = _projection(
    "n",
    ("start_time", "end_time", "first_seen", "last_seen"),
    f", sources: n.sources[0..{NODE_SOURCES}], sources_count: size(n.sources)",
    utc=False,
)
_PATH_REL = _projection("r", ("time", "first_time", "last_time"), utc=False)
PATH_QUERIES = {
    hops: """
MATCH (a) WHERE elementId(a) = $a
MATCH (b) WHERE elementId(b) = $b
MATCH p = shortestPath((a)-[:"""
    + "|".join(PROVENANCE_RELS)
    + f"*..{hops}]-(b))"
    # Never through a Host (driver loads and WMI subscriptions start at one), an Account or
    # a Logon: they tie together everything done there or as them, which is context, not
    # provenance (graph.model). They may be the path's ends.
    + """
WHERE none(n IN nodes(p)[1..-1] WHERE n:Host OR n:Account OR n:Logon)
RETURN [n IN nodes(p) | [elementId(n), labels(n), """
    + _PATH_NODE
    + """]] AS nodes,
       [r IN relationships(p) | [elementId(r), type(r), elementId(startNode(r)),
                                 elementId(endNode(r)), """
    + _PATH_REL
    + """]] AS rels
"""
    for hops in range(1, MAX_PATH_HOPS + 1)
}


@dataclass
class PathResult:
    sub: Subgraph
    path: list[str]  # element ids from `from` to `to`; empty when there is none
    max_hops: int


def shortest_path(graph: Graph, *, source: str, target: str, max_hops: int = 8) -> PathResult:
    """The shortest provenance path between two nodes (ids as graph views name them), at
    most `max_hops` long. Raises NodeNotFound for an unknown id."""
    hops = min(max(max_hops, 1), MAX_PATH_HOPS)

    def unit(tx: ManagedTransaction) -> PathResult:
        q = _Reads(tx)
        a, a_labels, a_props = _find_node(q, source)
        b, b_labels, b_props = _find_node(q, target)
        sub = Subgraph(max_nodes=MAX_PATH_HOPS + 1)
        sub.add_node(a, a_labels, a_props)
        sub.add_node(b, b_labels, b_props)
        sub.roots += [a, b]
        if a == b:
            return PathResult(sub, [a], hops)
        rows = q.rows(PATH_QUERIES[hops], a=a, b=b)
        if not rows:
            return PathResult(sub, [], hops)
        for eid, labels, props in rows[0]["nodes"]:
            sub.add_node(eid, labels, props)
        for rid, rel, start, end, rprops in rows[0]["rels"]:
            sub.add_edge(rid, rel, start, end, rprops)
        return PathResult(sub, [n[0] for n in rows[0]["nodes"]], hops)

    return graph.read_tx(unit, what="finding a path")


# -- one group of facts, page by page --------------------------------------------------------------
# In the order they happened (an edge's first time, or its one time), then by the member's key:
# a stable order, so a cursor of (time, key) neither skips nor repeats while ingest adds more.
def _facts_page_query(rel: str) -> str:
    end = FACT_TARGETS[rel]
    key = NODE_LABELS.get(end)
    member = f"(m:{end})" if key else "(m)"
    order_key = f"m.{key}" if key else "elementId(m)"
    return (
        f"""
MATCH (n) WHERE elementId(n) = $eid
MATCH (n)-[r:{rel}]->{member}
WITH r, m, coalesce(r.first_time, r.time, $epoch) AS t, {order_key} AS k
WHERE $after_t IS NULL OR t > $after_t OR (t = $after_t AND k > $after_k)
WITH r, m, t, k ORDER BY t, k LIMIT $limit
RETURN collect([elementId(r), """
        + REL_PROPS
        + """, elementId(m), labels(m), """
        + NODE_PROPS
        + """, toString(t), k]) AS rows
"""
    )


FACTS_PAGE = {rel: _facts_page_query(rel) for rel in FACT_RELS}
FACTS_TOTAL = {
    rel: f"MATCH (n) WHERE elementId(n) = $eid RETURN COUNT {{ (n)-[:{rel}]->() }} AS total"
    for rel in FACT_RELS
}


@dataclass
class FactsPage:
    sub: Subgraph  # the node, and this page's members with their edges
    node: str  # the node's element id
    rel: str
    total: int
    after: tuple[str, str] | None  # (time, key) of the page's last member, when more follow


def facts_page(
    graph: Graph,
    *,
    node: str,
    rel: str,
    limit: int = 100,
    after: tuple[datetime, str] | None = None,
) -> FactsPage:
    """One page of a node's facts of one kind (`rel` one of FACT_RELS): what a summarised
    group of the views holds. Raises NodeNotFound for an unknown id."""
    if rel not in FACT_RELS:
        raise ValueError(f"{rel} is not a kind of fact ({', '.join(FACT_RELS)})")

    def unit(tx: ManagedTransaction) -> FactsPage:
        q = _Reads(tx)
        eid, labels, props = _find_node(q, node)
        total = q.rows(FACTS_TOTAL[rel], eid=eid)[0]["total"]
        rows = q.listed(
            FACTS_PAGE[rel],
            eid=eid,
            epoch=EPOCH,
            after_t=after[0] if after else None,
            after_k=after[1] if after else None,
            limit=limit + 1,
        )
        sub = Subgraph(max_nodes=limit + 1)
        sub.add_node(eid, labels, props)
        sub.roots.append(eid)
        for rid, rprops, mid, mlabels, mprops, _t, _k in rows[:limit]:
            sub.add_node(mid, mlabels, mprops)
            sub.add_edge(rid, rel, eid, mid, rprops)
        more = rows[limit - 1][5:7] if len(rows) > limit else None
        return FactsPage(sub, eid, rel, total, (more[0], more[1]) if more else None)

    return graph.read_tx(unit, what="reading a group of facts")

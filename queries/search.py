"""Find where to start: a process, file path, host or address matching what a person typed.

Matching is case-insensitive substring search (a process also by exact pid or uid). It scans
the label it searches and stops at `limit`, so it answers fast on the first hits and bounded on
none; each kind is one constant, parameterised query. The API's search endpoint asks it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from provgraph.graph.tx import Graph
from provgraph.graph.values import utc_text
from provgraph.queries.nodes import node_id
from pydantic import BaseModel, Field

Kind = Literal["process", "file", "host", "address"]
KINDS: tuple[Kind, ...] = ("process", "file", "host", "address")


class SearchHit(BaseModel):
    id: str = Field(description="node id as the graph endpoints take it: `<Label>:<key>`")
    kind: str = Field(description="process, file, host or address")
    label: str
    host: str | None = None
    time: str | None = Field(None, description="a process's start time, UTC")
    detail: str | None = Field(None, description="command line, path or FQDN")


class SearchResults(BaseModel):
    hits: list[SearchHit]
    truncated: bool = Field(description="true when `limit` stopped the search")


_HOST_FILTER = "($host IS NULL OR n.host = $host)"

QUERIES: dict[Kind, str] = {
    # Ranked: the process itself (uid, pid, or its name) before processes whose name merely
    # contains the text, before those that only mention it on their command line (a search
    # for "msbuild" wants MSBuild first, not every cmd.exe that launched it).
    "process": f"""
MATCH (n:Process)
WHERE {_HOST_FILTER}
  AND (toLower(coalesce(n.name, '')) CONTAINS $q
       OR toLower(coalesce(n.command_line, '')) CONTAINS $q
       OR n.uid = $raw OR toString(n.pid) = $raw)
WITH n, toLower(coalesce(n.name, '')) AS name
WITH n, CASE WHEN n.uid = $raw OR toString(n.pid) = $raw OR name IN [$q, $q + '.exe'] THEN 0
             WHEN name CONTAINS $q THEN 1
             ELSE 2 END AS rank
ORDER BY rank, n.start_time, n.uid
RETURN labels(n) AS labels,
       n {{.uid, .name, .pid, .host, .command_line, {utc_text("n", "start_time")}}} AS props
LIMIT $limit""",
    "file": f"""
MATCH (n:File)
WHERE {_HOST_FILTER} AND toLower(n.path) CONTAINS $q
RETURN labels(n) AS labels, n {{.key, .name, .path, .host}} AS props
LIMIT $limit""",
    "host": """
MATCH (n:Host)
WHERE toLower(n.name) CONTAINS $q OR toLower(coalesce(n.fqdn, '')) CONTAINS $q
RETURN labels(n) AS labels, n {.name, .fqdn} AS props
LIMIT $limit""",
    "address": """
CALL () {
  MATCH (n:Connection)
  WHERE n.ip STARTS WITH $raw OR toLower(coalesce(n.hostname, '')) CONTAINS $q
  RETURN n LIMIT $limit
  UNION
  MATCH (n:Domain) WHERE n.name CONTAINS $q
  RETURN n LIMIT $limit
}
RETURN labels(n) AS labels, n {.key, .name, .ip, .port, .hostname} AS props
LIMIT $limit""",
}


def search(
    graph: Graph,
    *,
    q: str,
    kinds: Sequence[Kind] | None = None,
    host: str | None = None,
    limit: int = 50,
) -> SearchResults:
    """Up to `limit` hits, kinds in the order given; `truncated` when there were more."""
    hits = _hits(graph, q, kinds or KINDS, host, limit + 1)
    return SearchResults(hits=[SearchHit(**h) for h in hits[:limit]], truncated=len(hits) > limit)


def _hits(
    graph: Graph, q: str, kinds: Sequence[Kind], host: str | None, limit: int
) -> list[dict[str, Any]]:
    text = q.strip()
    hits: list[dict[str, Any]] = []
    for kind in kinds:
        if len(hits) >= limit:
            break
        rows = graph.read(
            QUERIES[kind],
            {
                "q": text.lower(),
                "raw": text,
                "host": host.lower() if host else None,
                "limit": limit - len(hits),
            },
            timeout=10,
        )
        for row in rows:
            props = row["props"]
            hits.append(
                {
                    "id": node_id(row["labels"], props),
                    "kind": kind,
                    "label": _label(kind, props),
                    "host": props.get("host"),
                    "time": props.get("start_time"),
                    "detail": props.get("command_line") or props.get("path") or props.get("fqdn"),
                }
            )
    return hits


def _label(kind: str, props: dict[str, Any]) -> str:
    if kind == "process":
        return f"{props.get('name') or props.get('uid')} ({props.get('pid')})"
    if kind == "file":
        return str(props.get("name") or props.get("path"))
    if kind == "host":
        return str(props.get("name"))
    if props.get("ip"):
        return f"{props.get('hostname') or props['ip']}:{props.get('port')}"
    return str(props.get("name"))

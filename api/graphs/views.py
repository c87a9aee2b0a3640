from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import Query
from fastapi.responses import Response
from provgraph.api.deps import GraphDep, Reader, SettingsDep
from provgraph.api.graphs import export
from provgraph.api.graphs.models import CyElements, CytoscapeGraph, GraphFormat, Rel
from provgraph.api.problems import Problem, responses
from provgraph.api.routing import secured_router
from provgraph.queries import subgraph as walks
from provgraph.queries.cursors import decode_cursor, encode_cursor
from provgraph.queries.nodes import node_id
from provgraph.queries.subgraph import Subgraph
from pydantic import BaseModel, Field

router = secured_router(prefix="/graph", tags=["graph"])

GRAPHML = "application/graphml+xml"
_GRAPH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {GRAPHML: {"schema": {"type": "string"}}},
        "description": "Cytoscape.js elements JSON, or GraphML with `format=graphml`",
    },
    **responses(400, 404),
}

Depth = Annotated[int, Query(ge=0, le=10, description="levels of descendants to follow")]
MaxNodes = Annotated[int, Query(ge=1, le=20_000, description="node budget; sets `truncated`")]

# An alert's graph as first opened. An aggregated alert names hundreds of processes (each with
# its account, logon, connection, DNS name): at 500 nodes its graph was 1,000 to 2,200 edges and
# 0.8 to 1.3 MB, 100 to 570 ms alone and 3 s at p99 under 8 clients while ingesting. At 200 it
# is 300 to 600 edges and about 0.3 MB, 30 to 50 ms alone; `truncated` says there is more and
# the console offers the higher budgets (`max_nodes`) from there.
FIRST_VIEW_NODES = 200


def _render(sub: Subgraph, fmt: GraphFormat, limits: dict[str, Any]) -> Any:
    if fmt is GraphFormat.GRAPHML:
        headers = {"X-Provgraph-Truncated": "true" if sub.truncated else "false"}
        return Response(export.graphml(sub), media_type=GRAPHML, headers=headers)
    # Built as plain data and encoded once: validating thousands of elements through pydantic
    # twice (here and as the response model) cost more than the walk on large subgraphs. The
    # shape is CytoscapeGraph's, which the OpenAPI description still declares.
    body = {
        "elements": export.elements(sub),
        "truncated": sub.truncated,
        "limits": limits,
        "roots": export.roots(sub),
        "groups": export.groups(sub),
    }
    return Response(orjson.dumps(body, default=str), media_type="application/json")


def _budget(settings: Any, max_nodes: int) -> int:
    if max_nodes > settings.subgraph_max_nodes:
        raise Problem(
            400, f"max_nodes may be at most {settings.subgraph_max_nodes}", slug="limit-exceeded"
        )
    return max_nodes


@router.get(
    "/alerts/{alert_id}",
    response_model=CytoscapeGraph,
    summary="An alert's provenance subgraph",
    description="The alert, its entities, their process ancestry up to the root and their "
    "descendants (processes, files written and run, connections, DNS) down to `depth`, "
    f"cut at `max_nodes` (default {FIRST_VIEW_NODES}) with `truncated: true`. A process's "
    f"facts of one kind past {walks.FACTS_INLINE} (files written, images loaded…) come as "
    "one `Group` node with their `count` (also listed in `groups`); `/graph/facts` pages "
    "through them.",
    responses=_GRAPH_RESPONSES,
)
def alert_subgraph(
    graph: GraphDep,
    settings: SettingsDep,
    _: Reader,
    alert_id: str,
    depth: Depth = 3,
    ancestry: Annotated[
        int | None, Query(ge=0, le=64, description="ancestry hops; default: to the root")
    ] = None,
    max_nodes: MaxNodes = FIRST_VIEW_NODES,
    format: GraphFormat = GraphFormat.CYTOSCAPE,
) -> Any:
    budget = _budget(settings, max_nodes)
    hops = settings.ancestry_max_hops if ancestry is None else ancestry
    sub = walks.alert_subgraph(
        graph, alert_id=alert_id, depth=depth, ancestry=hops, max_nodes=budget
    )
    return _render(sub, format, {"depth": depth, "ancestry": hops, "max_nodes": budget})


@router.get(
    "/neighbourhood",
    response_model=CytoscapeGraph,
    summary="Expand any node",
    description="Everything within `depth` hops of `node` (an id as these graphs name nodes: "
    "`Process:<uid>`, `File:<host>|<path>`, `Connection:<ip>|<port>|<proto>`, `Host:<name>`, "
    "`Domain:<name>`, `Alert:<id>`). Hosts are leaves unless the walk starts at one. Facts "
    "are summarised into `Group` nodes as in the alert subgraph.",
    responses=_GRAPH_RESPONSES,
)
def neighbourhood(
    graph: GraphDep,
    settings: SettingsDep,
    _: Reader,
    node: Annotated[str, Query(min_length=3, max_length=4096)],
    depth: Annotated[int, Query(ge=1, le=5)] = 1,
    rel: Annotated[list[Rel] | None, Query(description="relationship types to follow")] = None,
    max_nodes: MaxNodes = 500,
    format: GraphFormat = GraphFormat.CYTOSCAPE,
) -> Any:
    budget = _budget(settings, max_nodes)
    sub = walks.neighbourhood(
        graph,
        node=node,
        depth=depth,
        max_nodes=budget,
        rels=[r.value for r in rel] if rel else None,
    )
    return _render(sub, format, {"depth": depth, "max_nodes": budget})


@router.get(
    "/path",
    summary="The shortest provenance path between two nodes",
    description="Along the provenance edges (SPAWNED, EXECUTED, WROTE, CONNECTED_TO, ACCEPTED, "
    "RESOLVED, …) in either "
    "direction (never through a host), at most `max_hops` long. `found: false` when there is "
    "none within the bound; `path` lists the node ids from `from` to `to`.",
    responses=responses(400, 404),
)
def path(
    graph: GraphDep,
    _: Reader,
    source: Annotated[str, Query(alias="from", min_length=3, max_length=4096)],
    target: Annotated[str, Query(alias="to", min_length=3, max_length=4096)],
    max_hops: Annotated[int, Query(ge=1, le=walks.MAX_PATH_HOPS)] = 8,
) -> Any:
    found = walks.shortest_path(graph, source=source, target=target, max_hops=max_hops)
    ids = {eid: node_id(*found.sub.nodes[eid]) for eid in found.path}
    body = {
        "found": bool(found.path),
        "path": [ids[eid] for eid in found.path],
        "max_hops": found.max_hops,
        "elements": export.elements(found.sub),
    }
    return Response(orjson.dumps(body, default=str), media_type="application/json")


FACTS_CURSOR = "facts"


class FactsBody(BaseModel):
    node: str
    rel: str
    total: int = Field(description="how many such edges leave the node")
    elements: CyElements
    next_cursor: str | None = Field(description="null on the last page")


@router.get(
    "/facts",
    response_model=FactsBody,
    summary="One group of a node's facts, paged",
    description="What a `Group` node of the graph views stands for: the edges of type `rel` "
    "leaving `node` (files a process wrote, addresses it contacted…) with their far ends, in "
    "time order, `limit` at a time. Pass `next_cursor` back as `cursor` for the next page.",
    responses=responses(400, 404),
)
def facts(
    graph: GraphDep,
    _: Reader,
    node: Annotated[str, Query(min_length=3, max_length=4096)],
    rel: Annotated[str, Query(description=f"one of {', '.join(walks.FACT_RELS)}")],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="opaque; from a previous page")] = None,
) -> Any:
    if rel not in walks.FACT_RELS:
        raise Problem(
            400, f"rel must be one of {', '.join(walks.FACT_RELS)}", slug="invalid-parameter"
        )
    after = None
    if cursor:
        data = decode_cursor(FACTS_CURSOR, cursor)
        if data.get("node") != node or data.get("rel") != rel:
            raise Problem(400, "this cursor belongs to another group", slug="invalid-cursor")
        try:
            after = (datetime.fromisoformat(data["t"]), str(data["key"]))
        except (KeyError, TypeError, ValueError) as error:
            raise Problem(
                400, "the cursor does not hold a place in the group", slug="invalid-cursor"
            ) from error
    page = walks.facts_page(graph, node=node, rel=rel, limit=limit, after=after)
    body = {
        "node": node,
        "rel": rel,
        "total": page.total,
        "elements": export.elements(page.sub),
        "next_cursor": encode_cursor(
            FACTS_CURSOR, {"node": node, "rel": rel, "t": page.after[0], "key": page.after[1]}
        )
        if page.after
        else None,
    }
    return Response(orjson.dumps(body, default=str), media_type="application/json")

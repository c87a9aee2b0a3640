from __future__ import annotations

from typing import Annotated

from fastapi import Query
from provgraph.api.deps import GraphDep, Reader
from provgraph.api.routing import secured_router
from provgraph.queries import search as finder
from provgraph.queries.search import Kind, SearchResults

router = secured_router(prefix="/search", tags=["search"])


@router.get(
    "",
    response_model=SearchResults,
    summary="Find a process, file path, host or address to start exploring from",
    description="Case-insensitive substring match (a process also by exact pid or uid). "
    "Hit ids are the node ids the graph and provenance endpoints take.",
)
def search(
    graph: GraphDep,
    _: Reader,
    q: Annotated[str, Query(min_length=1, max_length=512)],
    kind: Annotated[list[Kind] | None, Query(description="repeatable; default all")] = None,
    host: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> SearchResults:
    return finder.search(graph, q=q, kinds=kind, host=host, limit=limit)

"""Health answers without a key (load balancers and orchestrators call it)."""

from __future__ import annotations

from fastapi import APIRouter
from provgraph.api.deps import GraphDep
from provgraph.api.problems import Problem, responses
from provgraph.core import __version__
from provgraph.graph.tx import GraphUnavailable
from pydantic import BaseModel

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    version: str
    neo4j: str


@router.get(
    "/health",
    response_model=Health,
    summary="Liveness and Neo4j reachability",
    responses=responses(503),
)
def health(graph: GraphDep) -> Health:
    try:
        server = graph.ping()
    except GraphUnavailable as error:
        raise Problem(503, f"Neo4j is not answering: {error}", slug="graph-unavailable") from None
    return Health(status="ok", version=__version__, neo4j=server)

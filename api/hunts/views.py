"""Saved hunts for the console's query panel: list, save, delete. They run through
`POST /query/cypher`."""

from __future__ import annotations

from fastapi import Response
from provgraph.api.deps import GraphDep, Hunter
from provgraph.api.problems import Problem, responses
from provgraph.api.routing import secured_router
from provgraph.queries import hunting
from provgraph.queries.hunting import Hunt, HuntCreate

router = secured_router(prefix="/hunts", tags=["query"])


@router.get("", response_model=list[Hunt], summary="Shipped and saved hunts")
def list_hunts(graph: GraphDep, _: Hunter) -> list[Hunt]:
    return hunting.list_hunts(graph)


@router.post(
    "",
    response_model=Hunt,
    status_code=201,
    summary="Save a hunt",
    description="Stores the text and its parameters; nothing runs. Run it with "
    "`POST /query/cypher`, its parameters as `parameters`.",
)
def save_hunt(graph: GraphDep, who: Hunter, hunt: HuntCreate) -> Hunt:
    return hunting.save_hunt(graph, hunt=hunt, actor=who.name or who.key_id)


@router.delete(
    "/{hunt_id}",
    status_code=204,
    summary="Delete a saved hunt",
    responses=responses(404, 409),
)
def delete_hunt(graph: GraphDep, _: Hunter, hunt_id: str) -> Response:
    try:
        hunting.delete_hunt(graph, hunt_id=hunt_id)
    except ValueError as error:
        raise Problem(409, str(error), slug="shipped-hunt") from None
    return Response(status_code=204)

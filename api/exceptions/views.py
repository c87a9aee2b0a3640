"""Rule exceptions made from alerts (`POST /alerts/{id}/exceptions`): list and remove them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from provgraph.api.deps import GraphDep, Reader, Triager
from provgraph.api.problems import responses
from provgraph.api.routing import secured_router
from provgraph.queries import exceptions
from provgraph.queries.exceptions import RuleExceptionRead

router = secured_router(prefix="/exceptions", tags=["rules"])


@router.get(
    "",
    response_model=list[RuleExceptionRead],
    summary="Rule exceptions in force",
    description="Each drops a rule's matches whose host, process parent or path it names.",
)
def list_exceptions(
    graph: GraphDep,
    _: Reader,
    rule: Annotated[str | None, Query(description="only this rule's")] = None,
) -> list[RuleExceptionRead]:
    return exceptions.list_exceptions(graph, rule_id=rule)


@router.delete(
    "/{exception_id}",
    response_model=RuleExceptionRead,
    summary="Remove a rule exception",
    description="The rule matches what it covered again from its next run; the alert the "
    "exception came from records the removal in its audit trail.",
    responses=responses(404),
)
def remove_exception(graph: GraphDep, who: Triager, exception_id: str) -> RuleExceptionRead:
    return exceptions.remove_exception(
        graph, exception_id=exception_id, actor=who.key_id, actor_name=who.name
    )

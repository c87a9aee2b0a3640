from __future__ import annotations

from provgraph.api.deps import GraphDep, Reader, SettingsDep
from provgraph.api.problems import Problem, responses
from provgraph.api.query import service
from provgraph.api.query.models import CypherRequest, CypherResult
from provgraph.api.routing import secured_router

router = secured_router(prefix="/query", tags=["query"])


@router.post(
    "/cypher",
    response_model=CypherResult,
    summary="Run read-only Cypher",
    description="Runs in a read-access transaction: Neo4j refuses any write (answered with "
    "400 `write-refused`). A server-side time limit stops long queries (504), rows are cut at "
    "`max_rows` (`truncated: true`). LOAD CSV and most procedures are refused.",
    responses=responses(400, 504),
)
def cypher(
    graph: GraphDep, settings: SettingsDep, _: Reader, request: CypherRequest
) -> CypherResult:
    max_rows = min(request.max_rows or settings.query_max_rows, settings.query_max_rows)
    timeout = min(
        request.timeout_seconds or settings.query_timeout_seconds, settings.query_timeout_seconds
    )
    try:
        columns, rows, truncated = service.run_cypher(
            graph,
            query=request.query,
            parameters=request.parameters,
            max_rows=max_rows,
            timeout=timeout,
        )
    except service.QueryRefused as refused:
        raise Problem(refused.status, str(refused), slug=refused.slug) from None
    return CypherResult(
        columns=columns,
        rows=rows,
        row_count=len(rows),
        truncated=truncated,
        max_rows=max_rows,
        timeout_seconds=timeout,
    )

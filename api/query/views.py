from __future__ import annotations

from provgraph.api.deps import GraphDep, Hunter, SettingsDep
from provgraph.api.problems import Problem, responses
from provgraph.api.query import service
from provgraph.api.query.models import CypherRequest, CypherResult
from provgraph.api.routing import secured_router

router = secured_router(prefix="/query", tags=["query"])


@router.post(
    "/cypher",
    response_model=CypherResult,
    summary="Run read-only Cypher over the provenance graph (scope `hunt`)",
    description="The server's own plan of the statement is checked first: writes and schema "
    "changes (400 `write-refused`), administration and DBMS commands such as SHOW/TERMINATE "
    "TRANSACTIONS (403 `command-refused`), other databases (403 `database-refused`), the API's "
    "own records by label (403 `internal-records`), LOAD CSV, CALL … IN TRANSACTIONS and "
    "procedures off the allow list (400) are refused. It then runs in a read-access "
    "transaction with a server-side time limit (504) and rows cut at `max_rows` "
    "(`truncated: true`). Nodes, relationships and paths of the API's own records are left out "
    "of the rows (`withheld` counts them).",
    responses=responses(400, 403, 504),
)
def cypher(
    graph: GraphDep, settings: SettingsDep, _: Hunter, request: CypherRequest
) -> CypherResult:
    max_rows = min(request.max_rows or settings.query_max_rows, settings.query_max_rows)
    timeout = min(
        request.timeout_seconds or settings.query_timeout_seconds, settings.query_timeout_seconds
    )
    try:
        columns, rows, truncated, withheld = service.run_cypher(
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
        withheld=withheld,
        max_rows=max_rows,
        timeout_seconds=timeout,
    )

"""Analysts' own Cypher, run so that it cannot change anything or run away.

Writes are refused by Neo4j itself: the query runs in a READ_ACCESS transaction, and the
server rejects any write, schema or admin clause in one. The transaction carries a server-
side timeout, and rows are read one by one up to a cap (the rest is discarded unread).
Before running, the plan is checked for the two read clauses that reach outside the graph:
LOAD CSV (files, URLs) and procedures other than the schema-introspection ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from neo4j import ManagedTransaction, unit_of_work
from neo4j.exceptions import ClientError
from neo4j.graph import Node, Path, Relationship
from provgraph.api.nodes import node_id
from provgraph.api.values import plain
from provgraph.graph.tx import Graph

ALLOWED_PROCEDURES = frozenset(
    {
        "db.labels",
        "db.relationshiptypes",
        "db.propertykeys",
        "db.schema.visualization",
        "db.schema.nodetypeproperties",
        "db.schema.reltypeproperties",
        "dbms.components",
    }
)
_OUTSIDE_OPERATORS = ("LoadCSV",)


class QueryRefused(Exception):
    """The query may not run here; the message says why."""

    def __init__(self, message: str, slug: str, status: int = 400) -> None:
        super().__init__(message)
        self.slug = slug
        self.status = status


def _operators(plan: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    if not plan:
        return
    yield plan
    for child in plan.get("children", []):
        yield from _operators(child)


def _procedure_name(operator: dict[str, Any]) -> str:
    details = str(operator.get("args", {}).get("Details", ""))
    return details.split("(", 1)[0].strip().lower()


def check_plan(plan: dict[str, Any] | None) -> None:
    for operator in _operators(plan):
        kind = str(operator.get("operatorType", "")).split("@", 1)[0]
        if kind in _OUTSIDE_OPERATORS:
            raise QueryRefused(
                "LOAD CSV reads files and URLs outside the graph; it is not allowed here",
                "outside-graph",
            )
        if kind == "ProcedureCall":
            name = _procedure_name(operator)
            if name not in ALLOWED_PROCEDURES:
                raise QueryRefused(
                    f"procedure {name or '?'} is not allowed here; allowed: "
                    f"{sorted(ALLOWED_PROCEDURES)}",
                    "procedure-refused",
                )


def _value(value: Any) -> Any:
    if isinstance(value, Node):
        props = dict(value)
        return {
            "id": node_id(list(value.labels), props),
            "labels": sorted(value.labels),
            "properties": plain(props),
        }
    if isinstance(value, Relationship):
        start = value.start_node
        end = value.end_node
        # An end node is only known in full when the same result returns it too.
        return {
            "type": value.type,
            "properties": plain(dict(value)),
            "start": node_id(list(start.labels), dict(start))
            if start is not None and start.labels
            else None,
            "end": node_id(list(end.labels), dict(end)) if end is not None and end.labels else None,
        }
    if isinstance(value, Path):
        return {
            "nodes": [_value(n) for n in value.nodes],
            "relationships": [_value(r) for r in value.relationships],
        }
    if isinstance(value, list):
        return [_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _value(v) for k, v in value.items()}
    return plain(value)


def run_cypher(
    graph: Graph, *, query: str, parameters: dict[str, Any], max_rows: int, timeout: float
) -> tuple[list[str], list[dict[str, Any]], bool]:
    """(columns, rows, truncated). Raises QueryRefused, or neo4j ClientError for bad Cypher."""

    # A managed transaction takes its server-side timeout from the unit of work.
    @unit_of_work(timeout=timeout)
    def unit(tx: ManagedTransaction) -> tuple[list[str], list[dict[str, Any]], bool]:
        explained = tx.run("EXPLAIN " + query, parameters).consume()
        check_plan(explained.plan)
        result = tx.run(query, parameters)
        columns = list(result.keys())
        rows: list[dict[str, Any]] = []
        for record in result:
            if len(rows) == max_rows:
                return columns, rows, True  # the rest is discarded, never transferred
            rows.append({k: _value(v) for k, v in record.items()})
        return columns, rows, False

    try:
        return graph.read_tx(unit, what="running an ad-hoc query")
    except (ValueError, TypeError, OverflowError, UnicodeError) as error:
        # The driver could not send a parameter (an integer beyond 64 bits, a lone surrogate).
        raise QueryRefused(
            f"a parameter cannot be sent to Neo4j: {error}", "bad-parameter"
        ) from error
    except ClientError as error:
        code = error.code or ""
        if code.endswith("AccessMode") or "read access mode" in (error.message or "").lower():
            raise QueryRefused(
                "this endpoint is read-only: Neo4j refused to write in a read "
                f"transaction ({error.message})",
                "write-refused",
            ) from error
        if "TransactionTimedOut" in code or "Terminated" in code:
            raise QueryRefused(
                f"the query ran past its {timeout:g} s time limit and was stopped",
                "query-timeout",
                status=504,
            ) from error
        raise

"""Analysts' own Cypher, limited to reading the provenance graph.

Neo4j Community has no access control inside a database, so this module is the only line
between a `hunt` key and everything the server can do. What the statement *is* comes from the
server, never from reading the query text: the query first runs as `EXPLAIN` in the same
read-access transaction, and the plan it returns is judged (`check_plan`):

* the planner's query type must be `r` (read only): writes (`w`, `rw`) and schema or DBMS
  statements (`s`: CREATE INDEX, DBMS-mode procedures such as `dbms.listConfig`) are refused;
* no command operator: `SHOW …` / `TERMINATE …` (transactions, settings, procedures,
  functions, indexes, constraints) plan as `ShowTransactions`, `TerminateTransactions` … with
  query type `r`, and user/database commands as `AdministrationCommand`: all refused;
* every operator runs on the graph's own database (`USE system …` plans run `@system`);
* procedures only from `ALLOWED_PROCEDURES`, all of them READ mode (a test asks the server);
* no `LOAD CSV` (files, URLs) and no `CALL { … } IN TRANSACTIONS` (which commits on its own);
* no scan, seek or expansion by a label or type that only the API's own records carry
  (`MATCH (k:ApiKey)`), so asking for them by name is refused outright.

A `MATCH (n)` still reaches every node, so rows are filtered too: a node, relationship or path
of the API's own records (`INTERNAL_LABELS`, `INTERNAL_RELATIONSHIP_TYPES`) is withheld (a
row whose column is one is dropped, a list or map loses the item) and counted in `withheld`.
What a projection (`n.hash`, `properties(n)`) can still read of them holds nothing secret:
secrets, URLs and key hashes are sealed under a key kept outside Neo4j (`api.sealing`).

The statement then runs in that read-access transaction (the server refuses any write in it),
under a server-side timeout, with rows read one by one up to a cap (the rest is never sent).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from neo4j import ManagedTransaction, unit_of_work
from neo4j.exceptions import ClientError
from neo4j.graph import Node, Path, Relationship
from provgraph.api.nodes import node_id
from provgraph.api.values import plain
from provgraph.graph.model import INTERNAL_LABELS, INTERNAL_RELATIONSHIP_TYPES
from provgraph.graph.tx import Graph

# Schema introspection only; every one is a READ-mode procedure (tests ask the server).
ALLOWED_PROCEDURES = frozenset(
    {
        "db.labels",
        "db.relationshiptypes",
        "db.propertykeys",
        "db.schema.visualization",
        "db.schema.nodetypeproperties",
        "db.schema.reltypeproperties",
    }
)

# The API's own records: keys, the audit trail, webhooks and their deliveries, the alert
# change counter. Relationship types that only join them (tests check none is missing).

# Operators of administration and DBMS commands, as Neo4j 5 plans them.
COMMAND_OPERATOR_PREFIXES = ("Show", "Terminate")
COMMAND_OPERATORS = frozenset({"AdministrationCommand", "SystemProcedureCall"})
OUTSIDE_OPERATORS = frozenset({"LoadCSV"})
OWN_TRANSACTION_OPERATORS = frozenset({"TransactionApply", "TransactionForeach"})
# Operators that read nodes or relationships by label or type: their details name what they
# read (`k:ApiKey`, `UNIQUE k:ApiKey(id) WHERE …`, `(a)-[r:DELIVERED]->(b)`).
_READS_BY_LABEL = re.compile(r"(Scan|Seek|Expand|ShortestPath|ProjectEndpoints)")
_NAMED = re.compile(r"[:|&]\s*`?([A-Za-z_][A-Za-z0-9_]*)`?")

READ_ONLY = "r"


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


def _details(operator: dict[str, Any]) -> str:
    return str(operator.get("args", {}).get("Details", "") or "")


def _procedure_name(operator: dict[str, Any]) -> str:
    return _details(operator).split("(", 1)[0].strip().lower()


def check_plan(plan: dict[str, Any] | None, *, query_type: str | None, database: str) -> None:
    """Refuse (QueryRefused) a statement that is not a plain read of `database`'s graph, judged
    by the plan and query type the server reported for it (see the module's notes)."""
    if query_type in ("w", "rw"):
        raise QueryRefused(
            "this endpoint is read-only: the server plans this statement as a write "
            f"(query type {query_type!r}), which is refused in a read transaction",
            "write-refused",
        )
    for operator in _operators(plan):
        kind, _, where = str(operator.get("operatorType", "")).partition("@")
        if kind in COMMAND_OPERATORS or kind.startswith(COMMAND_OPERATOR_PREFIXES):
            raise QueryRefused(
                f"administration and DBMS commands are not allowed here (the server plans "
                f"this statement as {kind}); ad-hoc Cypher reads the provenance graph only",
                "command-refused",
                status=403,
            )
        if where and where != database:
            raise QueryRefused(
                f"the statement runs on the database {where!r}; ad-hoc Cypher reads only the "
                f"provenance graph ({database!r})",
                "database-refused",
                status=403,
            )
        if kind in OUTSIDE_OPERATORS:
            raise QueryRefused(
                "LOAD CSV reads files and URLs outside the graph; it is not allowed here",
                "outside-graph",
            )
        if kind in OWN_TRANSACTION_OPERATORS:
            raise QueryRefused(
                "CALL { … } IN TRANSACTIONS commits transactions of its own; it is not "
                "allowed here",
                "in-transactions-refused",
            )
        if kind == "ProcedureCall":
            name = _procedure_name(operator)
            if name not in ALLOWED_PROCEDURES:
                raise QueryRefused(
                    f"procedure {name or '?'} is not allowed here; allowed: "
                    f"{sorted(ALLOWED_PROCEDURES)}",
                    "procedure-refused",
                )
        if _READS_BY_LABEL.search(kind):
            named = set(_NAMED.findall(_details(operator)))
            internal = sorted(named & (INTERNAL_LABELS | INTERNAL_RELATIONSHIP_TYPES))
            if internal:
                raise QueryRefused(
                    f"{', '.join(internal)}: the API's own records are not part of the "
                    "provenance graph and cannot be read here",
                    "internal-records",
                    status=403,
                )
    if query_type != READ_ONLY:
        raise QueryRefused(
            f"this endpoint runs reads only; the server plans this statement as query type "
            f"{query_type!r} (schema change or DBMS statement), which is refused",
            "write-refused",
        )


class _Withheld:
    """Marks a value that is one of the API's own records."""


WITHHELD = _Withheld()


def _internal_node(node: Node | None) -> bool:
    return node is not None and not INTERNAL_LABELS.isdisjoint(node.labels)


def _internal(value: Node | Relationship | Path) -> bool:
    if isinstance(value, Node):
        return _internal_node(value)
    if isinstance(value, Relationship):
        return (
            value.type in INTERNAL_RELATIONSHIP_TYPES
            or _internal_node(value.start_node)
            or _internal_node(value.end_node)
        )
    return any(_internal_node(n) for n in value.nodes) or any(
        _internal(r) for r in value.relationships
    )


class _Converter:
    """Graph values as JSON, with the API's own records withheld (and counted)."""

    def __init__(self) -> None:
        self.withheld = 0

    def value(self, value: Any) -> Any:
        if isinstance(value, Node | Relationship | Path) and _internal(value):
            self.withheld += 1
            return WITHHELD
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
                "end": node_id(list(end.labels), dict(end))
                if end is not None and end.labels
                else None,
            }
        if isinstance(value, Path):
            return {
                "nodes": [self.value(n) for n in value.nodes],
                "relationships": [self.value(r) for r in value.relationships],
            }
        if isinstance(value, list):
            items = (self.value(v) for v in value)
            return [v for v in items if v is not WITHHELD]
        if isinstance(value, dict):
            pairs = ((k, self.value(v)) for k, v in value.items())
            return {k: v for k, v in pairs if v is not WITHHELD}
        return plain(value)

    def row(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """The row as JSON, or None when a column is one of the API's records."""
        row = {}
        for key, value in record.items():
            converted = self.value(value)
            if converted is WITHHELD:
                return None
            row[key] = converted
        return row


def run_cypher(
    graph: Graph, *, query: str, parameters: dict[str, Any], max_rows: int, timeout: float
) -> tuple[list[str], list[dict[str, Any]], bool, int]:
    """(columns, rows, truncated, withheld). Raises QueryRefused, or neo4j ClientError for bad
    Cypher."""

    # A managed transaction takes its server-side timeout from the unit of work.
    @unit_of_work(timeout=timeout)
    def unit(tx: ManagedTransaction) -> tuple[list[str], list[dict[str, Any]], bool, int]:
        explained = tx.run("EXPLAIN " + query, parameters).consume()
        check_plan(
            explained.plan,
            query_type=explained.query_type,
            database=explained.database or graph.target.database or "neo4j",
        )
        result = tx.run(query, parameters)
        columns = list(result.keys())
        rows: list[dict[str, Any]] = []
        converter = _Converter()
        for record in result:
            row = converter.row(dict(zip(columns, record.values(), strict=True)))
            if row is None:
                continue
            if len(rows) == max_rows:
                return columns, rows, True, converter.withheld  # the rest is never sent
            rows.append(row)
        return columns, rows, False, converter.withheld

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

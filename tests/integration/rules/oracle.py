"""Shared helpers: compare a rule's Cypher matches with its pandas transcription."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from provgraph.graph.tx import Graph
from provgraph.queries.engine import evaluate
from provgraph.queries.reference import Model, evaluate_reference
from provgraph.queries.rule import Rule


def _canon(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, list | tuple):
        return tuple(sorted(_canon(v) for v in value))
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def as_set(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> set[tuple[Any, ...]]:
    return {tuple(_canon(row[c]) for c in columns) for row in rows}


def graph_and_reference(
    graph: Graph,
    rule: Rule,
    model: Model,
    since: datetime | None = None,
    until: datetime | None = None,
    **overrides: Any,
) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    reference = evaluate_reference(rule, model, since, until, **overrides)
    columns = list(reference.columns)
    found = [m.row for m in evaluate(graph, rule, since, until, overrides=overrides)]
    return as_set(found, columns), as_set(reference.to_dict("records"), columns)

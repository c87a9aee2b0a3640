"""Every rule's embedded examples give their expected match count through the graph too."""

from __future__ import annotations

import pytest
from provgraph.graph.loader import write_events
from provgraph.graph.tx import Graph
from provgraph.queries.catalog import explain_rule
from provgraph.queries.engine import evaluate
from provgraph.queries.examples import events_from_specs
from provgraph.queries.rule import load_rules

RULES = load_rules().rules
CASES = [(rule, example) for rule in RULES for example in rule.examples]


@pytest.mark.parametrize(("rule", "example"), CASES, ids=[f"{r.id}:{e.name}" for r, e in CASES])
def test_example(graph: Graph, rule, example) -> None:  # type: ignore[no-untyped-def]
    write_events(graph, events_from_specs(example.events))
    assert len(evaluate(graph, rule)) == example.expect


def test_the_server_accepts_every_shipped_query(graph: Graph) -> None:
    for rule in RULES:
        assert explain_rule(graph, rule) == [], rule.id

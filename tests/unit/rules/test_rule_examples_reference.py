"""Every rule's embedded examples give their expected match count in the pandas reference."""

from __future__ import annotations

import pytest
from provgraph.queries.examples import events_from_specs
from provgraph.queries.reference import evaluate_reference, events_frame
from provgraph.queries.rule import load_rules

CASES = [(rule, example) for rule in load_rules().rules for example in rule.examples]


def test_every_rule_has_a_positive_example() -> None:
    for rule in load_rules().rules:
        assert any(e.expect > 0 for e in rule.examples), rule.id


@pytest.mark.parametrize(("rule", "example"), CASES, ids=[f"{r.id}:{e.name}" for r, e in CASES])
def test_example(rule, example) -> None:  # type: ignore[no-untyped-def]
    frame = events_frame(events_from_specs(example.events))
    assert len(evaluate_reference(rule, frame)) == example.expect

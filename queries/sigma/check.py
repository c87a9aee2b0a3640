"""Does a compiled rule fit its time budget? Run it once over a reference graph and see.

Every rule runs with the engine's time limit, so no rule can hold the server longer than that.
`check_rules` goes further for an import: it EXPLAINs each compiled rule on the server (so a
regex Java rejects, say, is reported now and not at 3 a.m.) and evaluates it over the whole
history of a reference graph with `budget` as its limit; a rule the server stops is reported,
and `sigma import` leaves it disabled. The reference graph is the graph in use (`--check`:
read-only, nothing is written) or a scratch managed instance loaded with a data set given to
the import (`--check-on PATH`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from neo4j.exceptions import Neo4jError
from provgraph.graph.tx import Graph
from provgraph.queries.catalog import explain_rule
from provgraph.queries.engine import RuleTimedOut, evaluate
from provgraph.queries.rule import Rule

# the reason the state file gives for a rule `sigma import` disabled
BUDGET_REASON = "sigma import: over its time budget"


@dataclass
class Timing:
    rule_id: str
    seconds: float
    matches: int | None = None
    exceeded: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.exceeded and self.error is None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_rules(graph: Graph, rules: Iterable[Rule], budget: timedelta) -> dict[str, Timing]:
    """Each rule EXPLAINed, then run over the whole graph within `budget`."""
    out: dict[str, Timing] = {}
    for rule in rules:
        problems = explain_rule(graph, rule)
        if problems:
            out[rule.id] = Timing(rule.id, 0.0, error=problems[0].reason)
            continue
        limited = dataclasses.replace(rule, time_limit=budget)
        started = time.perf_counter()
        try:
            matches = len(evaluate(graph, limited))
        except RuleTimedOut:
            out[rule.id] = Timing(rule.id, time.perf_counter() - started, exceeded=True)
            continue
        except Neo4jError as error:
            message = error.message or str(error)
            out[rule.id] = Timing(rule.id, time.perf_counter() - started, error=message)
            continue
        out[rule.id] = Timing(rule.id, time.perf_counter() - started, matches)
    return out

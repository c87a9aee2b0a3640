"""The rule engine: validate rules against the server, run them over a time range, schedule them.

Three ways a rule runs, all through `run_rules`:
  * on demand (CLI `provgraph rules run`, the API),
  * after every ingest, over the event-time range just written (`run_rules(graph, since=…,
    until=…)`; a match counts when any of its facts falls in the range, and is computed from
    everything the graph holds, so a correlation that straddles two ingests is still whole),
  * on its schedule (`Scheduler`): every `interval`, over the last `lookback` of wall time.
Rule Cypher runs in read-access transactions (`Graph.read`): the server refuses writes.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from neo4j.exceptions import CypherSyntaxError, Neo4jError
from provgraph.core.config import rule_settings
from provgraph.core.errors import ProvgraphError
from provgraph.graph.tx import Graph
from provgraph.queries.alerts import (
    ApplyResult,
    Match,
    apply_matches,
    ensure_alert_schema,
    match_from_row,
)
from provgraph.queries.rule import Rule, RuleError, RuleSet, load_rules

log = logging.getLogger(__name__)

# the whole graph: what "no range" means
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)
QUERY_TIMEOUT = 120.0  # seconds a rule query may run before the server stops it

_schema_ready: set[int] = set()


def ensure_engine_schema(graph: Graph) -> None:
    if id(graph) not in _schema_ready:
        ensure_alert_schema(graph)
        _schema_ready.add(id(graph))


@dataclass
class RuleRun:
    rule_id: str
    since: datetime
    until: datetime
    matches: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    seconds: float = 0.0
    alert_ids: list[str] = field(default_factory=list)
    error: str | None = None


# -- validation against the server -------------------------------------------------------------
def explain_rule(graph: Graph, rule: Rule) -> list[RuleError]:
    """EXPLAIN the query on the server: syntax and semantic errors, located in the rule file."""
    params = rule.params(since=EPOCH, until=FAR_FUTURE)
    text = "EXPLAIN\n" + rule.query

    def plan(tx: Any) -> str | None:
        return tx.run(text, params).consume().query_type

    try:
        query_type = graph.read_tx(plan, what=f"explaining rule {rule.id}")
    except CypherSyntaxError as error:
        return [_locate(rule, error)]
    except Neo4jError as error:
        return [
            RuleError(
                rule.path or rule.id,
                rule.query_line,
                f"the server rejects the query: {error.message}",
            )
        ]
    if query_type != "r":
        # the planner's verdict: "rw"/"w"/"s" mean the query would write or change schema
        return [
            RuleError(
                rule.path or rule.id,
                rule.query_line,
                f"rules are read-only, the server plans this query as {query_type!r}",
            )
        ]
    return []


def _locate(rule: Rule, error: Neo4jError) -> RuleError:
    message = error.message or str(error)
    line = rule.query_line
    found = re.search(r"\(line (\d+), column (\d+)", message)
    column = None
    if found:
        # line 1 of the sent text is the EXPLAIN prefix
        line = rule.query_line + int(found.group(1)) - 2
        column = int(found.group(2))
    first = message.splitlines()[0] if message else "syntax error"
    return RuleError(rule.path or rule.id, line, f"Cypher: {first}", column)


def validate(graph: Graph | None, ruleset: RuleSet) -> list[RuleError]:
    """Loader problems plus, with a graph, the server's verdict on every query."""
    errors = list(ruleset.errors)
    if graph is not None:
        for rule in ruleset.rules:
            errors += explain_rule(graph, rule)
    return errors


def load_validated(graph: Graph, directory: Any = None) -> RuleSet:
    """Load rules and drop those the server rejects (their errors stay in `errors`)."""
    ruleset = load_rules(directory) if directory is not None else load_rules()
    good: list[Rule] = []
    for rule in ruleset.rules:
        problems = explain_rule(graph, rule)
        ruleset.errors += problems
        if not problems:
            good.append(rule)
    ruleset.rules = good
    return ruleset


# -- running -----------------------------------------------------------------------------------
def evaluate(
    graph: Graph,
    rule: Rule,
    since: datetime | None = None,
    until: datetime | None = None,
    **overrides: Any,
) -> list[Match]:
    """The rule's matches over [since, until], without writing anything."""
    ensure_engine_schema(graph)  # the rules lean on its indexes (File(host, ext))
    params = rule.params(since=since or EPOCH, until=until or FAR_FUTURE, **overrides)
    # no per-query timeout yet: Graph.read(timeout=…) passes a Query object to tx.run, which
    # the driver refuses inside a transaction function (reported to graph/)
    rows = graph.read(rule.query, {**params})
    return [match_from_row(rule, row) for row in rows]


def run_rule(
    graph: Graph,
    rule: Rule,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
) -> RuleRun:
    ensure_engine_schema(graph)
    run = RuleRun(rule.id, since or EPOCH, until or FAR_FUTURE)
    started = time.perf_counter()
    matches = evaluate(graph, rule, since, until)
    applied: ApplyResult = apply_matches(graph, rule, matches, now)
    run.matches = len(matches)
    run.created, run.updated, run.unchanged = applied.created, applied.updated, applied.unchanged
    run.alert_ids = applied.alert_ids
    run.seconds = time.perf_counter() - started
    return run


def run_rules(
    graph: Graph,
    since: datetime | None = None,
    until: datetime | None = None,
    rules: Iterable[Rule] | None = None,
    now: datetime | None = None,
) -> list[RuleRun]:
    """Run every rule (or the given ones) over [since, until]; one failing rule does not stop
    the others, its run carries the error."""
    chosen = list(rules) if rules is not None else _default_rules()
    runs = []
    for rule in chosen:
        try:
            runs.append(run_rule(graph, rule, since, until, now))
        except Neo4jError as error:
            log.error("rule %s failed: %s", rule.id, error)
            runs.append(
                RuleRun(
                    rule.id, since or EPOCH, until or FAR_FUTURE, error=str(error.message or error)
                )
            )
    return runs


_default: RuleSet | None = None


def _default_rules() -> list[Rule]:
    global _default
    if _default is None:
        _default = load_rules()
        for problem in _default.errors:
            log.error("%s", problem)
    return tune(_default.rules, rule_settings())


def tune(rules: Iterable[Rule], settings: dict[str, dict[str, Any]]) -> list[Rule]:
    """Apply site settings (allow lists, windows …) over the rules' shipped defaults.

    Settings name rules and parameters that must exist, with values of the shipped type, so a
    typo in an allow list fails loudly instead of silently leaving the default in force."""
    by_id = {rule.id: rule for rule in rules}
    for rule_id, values in settings.items():
        if rule_id not in by_id:
            raise ProvgraphError(
                f"rule settings: no rule '{rule_id}' (known: {', '.join(sorted(by_id))})"
            )
        rule = by_id[rule_id]
        for name, value in values.items():
            if name not in rule.parameters:
                raise ProvgraphError(
                    f"rule settings: rule '{rule_id}' has no parameter '{name}' "
                    f"(it has: {', '.join(sorted(rule.parameters))})"
                )
            shipped = rule.parameters[name]
            if type(shipped) is not type(value) and not (
                isinstance(shipped, (int, float)) and isinstance(value, (int, float))
            ):
                raise ProvgraphError(
                    f"rule settings: {rule_id}.{name} must be a {type(shipped).__name__}, "
                    f"got {type(value).__name__}"
                )
        by_id[rule_id] = dataclasses.replace(rule, parameters={**rule.parameters, **values})
    return [by_id[rule.id] for rule in rules]


# -- scheduling --------------------------------------------------------------------------------
@dataclass
class Scheduler:
    """Runs each rule every `interval` over the last `lookback`. `tick` is one pass (for tests and
    for an API process that drives it from its own loop); `run_forever` loops until stopped."""

    graph: Graph
    rules: list[Rule]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    next_due: dict[str, datetime] = field(default_factory=dict)

    def tick(self) -> list[RuleRun]:
        now = self.clock()
        due = [r for r in self.rules if self.next_due.get(r.id, now) <= now]
        runs = []
        for rule in due:
            lookback = rule.schedule.lookback or rule.schedule.interval
            runs += run_rules(self.graph, since=now - lookback, until=now, rules=[rule], now=now)
            self.next_due[rule.id] = now + (rule.schedule.interval or timedelta(minutes=5))
        return runs

    def run_forever(
        self,
        stop: threading.Event | None = None,
        poll: float = 1.0,
        on_run: Callable[[RuleRun], None] | None = None,
    ) -> None:
        stop = stop or threading.Event()
        while not stop.is_set():
            for run in self.tick():
                if on_run:
                    on_run(run)
            stop.wait(poll)

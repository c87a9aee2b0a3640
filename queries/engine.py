"""The rule engine: run rules over a time range, each within its time limit, and on schedule.

Three ways a rule runs, all through `run_rules`:
  * on demand (CLI `provgraph rules run`, the API),
  * after every ingest, over the event-time range just written (`run_rules(graph, since=…,
    until=…)`; a match counts when any of its facts falls in the range, and is computed from
    everything the graph holds, so a correlation that straddles two ingests is still whole),
  * on its schedule (`Scheduler`): every `interval`, over the last `lookback` of wall time.
Rule Cypher runs in read-access transactions (`Graph.read`): the server refuses writes, and
stops a query at the rule's time limit. Rules come from the catalog (`queries/catalog.py`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from neo4j.exceptions import Neo4jError
from provgraph.core.errors import ProvgraphError
from provgraph.core.times import span
from provgraph.graph.tx import Graph
from provgraph.queries.alerts import (
    ApplyResult,
    Match,
    apply_matches,
    ensure_alert_schema,
    match_from_row,
)
from provgraph.queries.catalog import DEFAULT_TIME_LIMIT, Catalog, default_catalog
from provgraph.queries.exceptions import drop_excepted
from provgraph.queries.rule import Rule

log = logging.getLogger(__name__)

# the server's codes for a transaction stopped at its time limit (the client's, or the
# server's own db.transaction.timeout)
_TIMED_OUT = frozenset(
    {
        "Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration",
        "Neo.ClientError.Transaction.TransactionTimedOut",
    }
)

_schema_ready: set[int] = set()


class RuleTimedOut(ProvgraphError):
    """A rule's query ran past its time limit and the server stopped it."""

    def __init__(self, rule: Rule, limit: timedelta) -> None:
        self.rule_id = rule.id
        self.limit = limit
        super().__init__(f"ran past its {limit.total_seconds():g} s limit")


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


# -- running -----------------------------------------------------------------------------------
def time_limit(rule: Rule) -> timedelta:
    """The rule's own limit (the catalog resolves the site default into it), else the default."""
    return rule.time_limit or DEFAULT_TIME_LIMIT


def evaluate(
    graph: Graph,
    rule: Rule,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
) -> list[Match]:
    """The rule's matches over [since, until], without writing anything; `overrides` replace
    rule parameters for this evaluation only (one mapping, so a parameter may have any name).
    The query runs with the rule's time limit on the server; past it, RuleTimedOut."""
    ensure_engine_schema(graph)  # the rules lean on its indexes (File(host, ext))
    start, end = span(since, until)
    params = {**rule.params(overrides), "since": start, "until": end}
    limit = time_limit(rule)
    try:
        rows = graph.read(rule.query, params, timeout=limit.total_seconds())
    except Neo4jError as error:
        if error.code in _TIMED_OUT:
            raise RuleTimedOut(rule, limit) from error
        raise
    # Analysts' exceptions of the rule (queries/exceptions.py) are site settings too.
    return drop_excepted(graph, rule, [match_from_row(rule, row) for row in rows])


def run_rule(
    graph: Graph,
    rule: Rule,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
) -> RuleRun:
    ensure_engine_schema(graph)
    start, end = span(since, until)
    run = RuleRun(rule.id, start, end)
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
    *,
    catalog: Catalog | None = None,
) -> list[RuleRun]:
    """Run the given rules (default: every rule of the catalog, site settings applied) over
    [since, until]; one failing rule does not stop the others, its run carries the error."""
    chosen = list(rules) if rules is not None else (catalog or default_catalog()).rules()
    runs = []
    for rule in chosen:
        try:
            runs.append(run_rule(graph, rule, since, until, now))
            continue
        except RuleTimedOut as error:
            message = str(error)
        except Neo4jError as error:
            message = error.message or str(error)
        log.error("rule %s failed: %s", rule.id, message)
        start, end = span(since, until)
        runs.append(RuleRun(rule.id, start, end, error=message))
    return runs


# -- scheduling --------------------------------------------------------------------------------
@dataclass
class Scheduler:
    """Runs each rule every `interval` over the last `lookback`. `tick` is one pass (for tests and
    for an API process that drives it from its own loop); `run_forever` loops until stopped.

    Without fixed `rules`, each tick takes the catalog's rules as they are then (`only`: just
    these ids), so edits to rule files and site settings reach a long-running scheduler."""

    graph: Graph
    rules: Sequence[Rule] | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    next_due: dict[str, datetime] = field(default_factory=dict)
    catalog: Catalog | None = None
    only: frozenset[str] | None = None

    def current_rules(self) -> list[Rule]:
        if self.rules is not None:
            return list(self.rules)
        return (self.catalog or default_catalog()).select(self.only)

    def tick(self) -> list[RuleRun]:
        now = self.clock()
        due = [r for r in self.current_rules() if self.next_due.get(r.id, now) <= now]
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
        """Tick until `stop`. A catalog that cannot be read (a broken settings file) is logged
        once per distinct problem and retried each poll: no rule runs with the wrong settings."""
        stop = stop or threading.Event()
        reported: str | None = None
        while not stop.is_set():
            try:
                runs = self.tick()
                reported = None
            except ProvgraphError as error:
                if str(error) != reported:
                    log.error("scheduler: %s", error)
                    reported = str(error)
                runs = []
            for run in runs:
                if on_run:
                    on_run(run)
            stop.wait(poll)

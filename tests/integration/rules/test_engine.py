"""The engine against a real server: EXPLAIN at load, read-only runs, time ranges, schedule."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from neo4j.exceptions import ClientError
from provgraph.graph.loader import write_events
from provgraph.graph.tx import Graph
from provgraph.queries.catalog import Catalog, explain_rule
from provgraph.queries.engine import Scheduler, run_rules
from provgraph.queries.examples import BASE, events_from_specs
from provgraph.queries.rule import RULES_DIR, load_rules, parse_rule

RULES = {r.id: r for r in load_rules().rules}


def _rule_from(text: str, name: str = "msbuild_network.yml"):  # type: ignore[no-untyped-def]
    rule, errors = parse_rule(text, Path("/rules") / name)
    assert rule is not None, errors
    return rule


def test_explain_locates_a_cypher_error_in_the_file(graph: Graph) -> None:
    text = (RULES_DIR / "msbuild_network.yml").read_text()
    broken = text.replace("WITH m, c, [t IN r.times", "WITH m, c, [t IN r.times WHERE", 1)
    line = (
        broken.splitlines().index(
            next(x for x in broken.splitlines() if "[t IN r.times WHERE WHERE" in x)
        )
        + 1
    )
    (error,) = explain_rule(graph, _rule_from(broken))
    assert error.line == line and error.path == "/rules/msbuild_network.yml"
    assert "Cypher:" in error.reason


def test_explain_rejects_a_query_the_planner_sees_as_writing(graph: Graph) -> None:
    rule = replace(
        RULES["msbuild_network"],
        query="CALL { CREATE (x:Sneaky) } RETURN 1 AS host, 2 AS first_seen, 3 AS last_seen",
    )
    (error,) = explain_rule(graph, rule)
    assert "read-only" in error.reason
    assert graph.read("MATCH (x:Sneaky) RETURN count(x) AS n") == [{"n": 0}]


def test_rules_run_in_read_access_transactions(graph: Graph) -> None:
    with pytest.raises(ClientError, match="read access mode"):
        graph.read("CREATE (x:Sneaky) RETURN x")


def test_load_validated_keeps_the_good_rules(graph: Graph, tmp_path: Path) -> None:
    text = (RULES_DIR / "msbuild_network.yml").read_text()
    (tmp_path / "msbuild_network.yml").write_text(text)
    (tmp_path / "bad_cypher.yml").write_text(
        text.replace("id: msbuild_network", "id: bad_cypher").replace(
            "UNWIND $msbuild_names", "UNWIND $msbuild_names (", 1
        )
    )
    ruleset = Catalog.of_folders(tmp_path).validated(graph)
    assert [r.id for r in ruleset.rules] == ["msbuild_network"]
    assert [Path(e.path).name for e in ruleset.errors] == ["bad_cypher.yml"]


BUILD = [
    {"kind": "process_start", "t": 0, "host": "h1", "uid": "b", "image": "C:\\MSBuild.exe"},
    {
        "kind": "file_write",
        "t": 290,
        "host": "h1",
        "uid": "e",
        "image": "C:\\x.exe",
        "path": "C:\\src\\a.cs",
    },
]


def test_a_correlation_straddling_two_ingests_is_found_after_the_second(graph: Graph) -> None:
    rule = RULES["build_process_compromise"]
    first, second = events_from_specs(BUILD)
    write_events(graph, [first])
    (run,) = run_rules(graph, since=first.ts, until=first.ts, rules=[rule])
    assert run.matches == 0
    write_events(graph, [second])
    (run,) = run_rules(graph, since=second.ts, until=second.ts, rules=[rule])
    assert (run.matches, run.created) == (1, 1)
    # a range with none of the match's facts in it does not report it
    (run,) = run_rules(
        graph,
        since=second.ts + timedelta(seconds=1),
        until=second.ts + timedelta(hours=1),
        rules=[rule],
    )
    assert run.matches == 0


def test_scheduler_runs_due_rules_over_their_lookback(graph: Graph) -> None:
    rule = RULES["build_process_compromise"]
    write_events(graph, events_from_specs(BUILD))
    clock = [BASE + timedelta(hours=2)]
    scheduler = Scheduler(graph, [rule], clock=lambda: clock[0])
    (run,) = scheduler.tick()
    assert run.since == clock[0] - rule.schedule.lookback and run.created == 1
    assert scheduler.tick() == []  # not due again yet
    clock[0] += rule.schedule.interval  # lookback == interval: the build has left the window
    (run,) = scheduler.tick()
    assert run.matches == 0 and run.since > BASE


def test_a_failing_rule_does_not_stop_the_others(graph: Graph) -> None:
    bad = replace(
        RULES["msbuild_network"],
        id="bad",
        query="RETURN 1/0 AS host, 1 AS first_seen, 1 AS last_seen",
    )
    runs = run_rules(graph, rules=[bad, RULES["msbuild_network"]])
    assert runs[0].error and "zero" in runs[0].error.lower()
    assert runs[1].error is None

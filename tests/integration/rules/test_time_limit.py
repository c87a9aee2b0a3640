"""A rule's query runs with a time limit on the server: past it, that rule's run carries the
error and the other rules still run. The slow rule is a cartesian product over generated
nodes (tens of seconds unbounded); the tests assert the error, not the timing."""

from __future__ import annotations

from pathlib import Path

import pytest
from provgraph.graph.target import Neo4jTarget
from provgraph.graph.tx import Graph
from provgraph.queries.catalog import Catalog
from provgraph.queries.engine import run_rules
from typer.testing import CliRunner

from provgraph.cli.rules import rules_app
from tests.integration.rules.site import use_settings

SLOW_RULE = """\
id: slow_cartesian
name: Deliberately slow
description: A cartesian product over generated nodes, to run past a time limit.
severity: low
risk_score: 1
mitre: {tactics: [TA0002], techniques: [T1059]}
query: |
  MATCH (a:Slow), (b:Slow), (c:Slow)
  WHERE a.i + b.i + c.i < 0 AND $since <= $until
  RETURN 'h' AS host, a.i AS first_seen, a.i AS last_seen
entities:
  - {role: host, type: host, column: host}
schedule: {interval: 1h, lookback: 1h}
suppression: {fields: [host], duration: 1h}
summary: "{host}"
false_positives: [none]
investigation: none
"""
SLOW_NODES = 500  # 500^3 combinations: far longer than a 1 s limit on any machine here


@pytest.fixture
def slow_graph(graph: Graph) -> Graph:
    graph.write("UNWIND range(1, $n) AS i CREATE (:Slow {i: i})", {"n": SLOW_NODES})
    return graph


def _rule_dir(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "site-rules"
    folder.mkdir()
    (folder / "slow_cartesian.yml").write_text(text)
    return folder


def test_a_rule_past_its_limit_fails_alone(slow_graph: Graph, tmp_path: Path) -> None:
    folder = _rule_dir(tmp_path, SLOW_RULE + "time_limit: 1s\n")
    view = Catalog.of_folders(folder).snapshot()
    assert view.errors == ()
    (slow,) = view.rules
    assert slow.time_limit is not None and slow.time_limit.total_seconds() == 1
    shipped = Catalog().select(["msbuild_network"])
    runs = run_rules(slow_graph, rules=[slow, *shipped])
    assert [run.rule_id for run in runs] == ["slow_cartesian", "msbuild_network"]
    assert runs[0].error == "ran past its 1 s limit"
    assert runs[1].error is None


def test_site_time_limit_applies_through_the_cli(
    slow_graph: Graph,
    neo4j_target: Neo4jTarget,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = _rule_dir(tmp_path, SLOW_RULE)  # no limit of its own: the site's applies
    use_settings(tmp_path, monkeypatch, f"rule_time_limit: 1s\nrule_dirs: [{folder.name}]\n")
    monkeypatch.setenv("NEO4J_URI", neo4j_target.uri)
    monkeypatch.setenv("NEO4J_USER", neo4j_target.user)
    monkeypatch.setenv("NEO4J_PASSWORD", neo4j_target.password)
    result = CliRunner().invoke(
        rules_app, ["run", "--rule", "slow_cartesian", "--rule", "msbuild_network"]
    )
    assert result.exit_code == 4, result.output  # a rule failed: the exit status says so
    assert "slow_cartesian: FAILED ran past its 1 s limit" in result.output
    assert "msbuild_network " in result.output and "matches     0" in result.output

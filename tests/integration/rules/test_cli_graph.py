"""The rules and alerts CLI against the real server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from provgraph.graph.loader import write_events
from provgraph.graph.target import Neo4jTarget
from provgraph.graph.tx import Graph
from provgraph.queries.examples import events_from_specs
from provgraph.queries.rule import RULES_DIR
from typer.testing import CliRunner

from provgraph.cli.alerts import alerts_app
from provgraph.cli.rules import rules_app

runner = CliRunner()


@pytest.fixture
def cli_env(graph: Graph, neo4j_target: Neo4jTarget, monkeypatch: pytest.MonkeyPatch) -> Graph:
    monkeypatch.setenv("NEO4J_URI", neo4j_target.uri)
    monkeypatch.setenv("NEO4J_USER", neo4j_target.user)
    monkeypatch.setenv("NEO4J_PASSWORD", neo4j_target.password)
    return graph


def test_validate_run_and_list(cli_env: Graph) -> None:
    assert runner.invoke(rules_app, ["validate"]).exit_code == 0
    write_events(
        cli_env,
        events_from_specs(
            [
                {
                    "kind": "process_start",
                    "t": 0,
                    "host": "ws6",
                    "uid": "m",
                    "image": "C:\\MSBuild.exe",
                    "parent": {"uid": "c", "image": "C:\\cmd.exe"},
                }
            ]
        ),
    )
    result = runner.invoke(
        rules_app, ["run", "--rule", "msbuild_script_parent", "--since", "2023-12-31T00:00:00Z"]
    )
    assert result.exit_code == 0, result.output
    assert "new    1" in result.output
    listed = runner.invoke(alerts_app, ["list", "--json", "--status", "open"])
    (alert,) = json.loads(listed.output)["alerts"]
    assert alert["rule_id"] == "msbuild_script_parent" and alert["host"] == "ws6"
    assert alert["details"]["parent_name"] == "cmd.exe"
    assert {e["role"] for e in alert["entities"]} == {"host", "msbuild", "script_parent"}
    text = runner.invoke(alerts_app, ["list", "--rule", "msbuild_script_parent"]).output
    assert "T1127.001" in text and "- msbuild: msbuild.exe  g:m" in text
    later = json.loads(runner.invoke(alerts_app, ["list", "--json", "--after-seq", "1"]).output)
    assert later["alerts"] == []


def test_examples_through_the_graph_leave_nothing_behind(cli_env: Graph) -> None:
    result = runner.invoke(rules_app, ["test", "--neo4j"])
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output and "graph 1" in result.output
    assert cli_env.read("MATCH (n) RETURN count(n) AS n") == [{"n": 0}]


def test_a_site_rule_without_a_reference_is_checked_on_the_graph(
    cli_env: Graph, tmp_path: Path
) -> None:
    text = (RULES_DIR / "msbuild_network.yml").read_text()
    (tmp_path / "site_msbuild_network.yml").write_text(
        text.replace("id: msbuild_network", "id: site_msbuild_network")
    )
    result = runner.invoke(rules_app, ["test", "--neo4j", "--rules-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    checked = [line for line in result.output.splitlines() if "site_msbuild_network:" in line]
    assert checked == [
        "ok   site_msbuild_network: MSBuild connects to a documentation address "
        "(expect 1; graph 1, no reference)",
        "ok   site_msbuild_network: a peer connects to MSBuild (inbound) is not MSBuild "
        "connecting out (expect 0; graph 0, no reference)",
        "ok   site_msbuild_network: MSBuild talks to loopback only "
        "(expect 0; graph 0, no reference)",
    ]
    assert "not checked" not in result.output

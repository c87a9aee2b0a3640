"""A site allow list in provgraph.yaml silences the rule on every path that runs rules: the
CLI (`provgraph rules run`, once and on schedule), the scheduler, and after an ingest.
Without the settings file the same events alert on both hosts (the control)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from provgraph.graph.target import Neo4jTarget
from provgraph.graph.tx import Graph
from provgraph.queries.engine import Scheduler, run_rules
from provgraph.queries.examples import BASE
from typer.testing import CliRunner

from provgraph.cli.rules import rules_app
from tests.integration.rules.site import (
    ALERTING_HOSTS,
    ALLOW_LIST,
    RULE,
    SITE_ALERTING_HOSTS,
    alerting_hosts,
    use_settings,
    write_registry_events,
)

runner = CliRunner()


@pytest.fixture(params=["site", "shipped"])
def expected_hosts(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> set[str]:
    """With the site's allow list, or with no settings file at all (the control)."""
    if request.param == "site":
        use_settings(tmp_path, monkeypatch, ALLOW_LIST)
        return SITE_ALERTING_HOSTS
    monkeypatch.setenv("PROVGRAPH_CONFIG", str(tmp_path / "empty.yaml"))
    (tmp_path / "empty.yaml").write_text("{}\n")
    return ALERTING_HOSTS


@pytest.fixture
def cli_env(graph: Graph, neo4j_target: Neo4jTarget, monkeypatch: pytest.MonkeyPatch) -> Graph:
    monkeypatch.setenv("NEO4J_URI", neo4j_target.uri)
    monkeypatch.setenv("NEO4J_USER", neo4j_target.user)
    monkeypatch.setenv("NEO4J_PASSWORD", neo4j_target.password)
    return graph


def test_cli_rules_run_applies_site_settings(cli_env: Graph, expected_hosts: set[str]) -> None:
    write_registry_events(cli_env)
    result = runner.invoke(rules_app, ["run", "--rule", RULE])
    assert result.exit_code == 0, result.output
    assert f"new    {len(expected_hosts)}" in result.output
    assert alerting_hosts(cli_env) == expected_hosts


def test_cli_rules_run_with_rules_dir_applies_the_settings_naming_its_rules(
    cli_env: Graph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provgraph.queries.rule import RULES_DIR

    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / f"{RULE}.yml").write_text((RULES_DIR / f"{RULE}.yml").read_text())
    # a setting for a rule that is not in this folder is passed over, not an error
    use_settings(
        tmp_path, monkeypatch, ALLOW_LIST + "  msbuild_network:\n    excluded_ips: [10.0.0.1]\n"
    )
    write_registry_events(cli_env)
    result = runner.invoke(rules_app, ["run", "--rules-dir", str(folder)])
    assert result.exit_code == 0, result.output
    assert alerting_hosts(cli_env) == SITE_ALERTING_HOSTS


def test_scheduler_applies_site_settings(graph: Graph, expected_hosts: set[str]) -> None:
    write_registry_events(graph)
    scheduler = Scheduler(graph, clock=lambda: BASE + timedelta(hours=1), only=frozenset({RULE}))
    (run,) = scheduler.tick()
    assert run.error is None and run.created == len(expected_hosts)
    assert alerting_hosts(graph) == expected_hosts


def test_scheduler_picks_up_a_settings_change(
    graph: Graph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = use_settings(tmp_path, monkeypatch, "{}\n")
    write_registry_events(graph)
    clock = [BASE + timedelta(hours=1)]
    scheduler = Scheduler(graph, clock=lambda: clock[0], only=frozenset({RULE}))
    (first,) = scheduler.tick()
    assert first.matches == len(ALERTING_HOSTS)
    settings.write_text(ALLOW_LIST)
    clock[0] += timedelta(hours=1)  # the rule's interval: due again
    (second,) = scheduler.tick()
    assert second.matches == len(SITE_ALERTING_HOSTS)


def test_after_ingest_runs_apply_site_settings(graph: Graph, expected_hosts: set[str]) -> None:
    write_registry_events(graph)
    runs = {run.rule_id: run for run in run_rules(graph)}  # the default: the catalog's rules
    assert runs[RULE].created == len(expected_hosts)
    assert alerting_hosts(graph) == expected_hosts

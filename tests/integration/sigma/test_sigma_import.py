"""`sigma import --check`: every compiled rule runs once over the graph in use within a time
budget; one the server stops there is imported disabled, and enabled again once it fits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from provgraph.graph.loader import write_events
from provgraph.graph.target import Neo4jTarget
from provgraph.graph.tx import Graph
from provgraph.queries.examples import events_from_specs
from typer.testing import CliRunner

from provgraph.cli.main import app

ROOT = Path(__file__).resolve().parents[3]
FAST = ROOT / "tests" / "data" / "sigma" / "rules"
FAST = FAST / "proc_creation_win_discovery_via_reg_queries.yml"
FAST_ID = "sigma_0022869c_49f7_4ff2_ba03_85ac42ddac58"
SLOW = {
    "title": "Deliberately slow lineage",
    "id": "5e1f0000-0000-4000-8000-000000000001",
    "logsource": {"category": "process_creation"},
    "detection": {"s": {"DescendantCommandLine|contains": "zzz"}, "condition": "s"},
}
SLOW_ID = "sigma_5e1f0000_0000_4000_8000_000000000001"
CHAIN = 5000  # a chain of processes: every one walks all below it (~12M steps unbounded)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, neo4j_target: Neo4jTarget) -> Path:
    settings = tmp_path / "provgraph.yaml"
    settings.write_text("rules_home: rules-home\n")
    monkeypatch.setenv("PROVGRAPH_CONFIG", str(settings))
    monkeypatch.setenv("NEO4J_URI", neo4j_target.uri)
    monkeypatch.setenv("NEO4J_USER", neo4j_target.user)
    monkeypatch.setenv("NEO4J_PASSWORD", neo4j_target.password)
    return tmp_path / "rules-home"


def sigma_import(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["sigma", "import", *args])
    return result.exit_code, result.output


def test_check_disables_a_rule_past_its_budget(graph: Graph, home: Path, tmp_path: Path) -> None:
    specs = [
        {
            "kind": "process_start",
            "t": i,
            "host": "chain",
            "uid": f"c{i}",
            "image": "C:\\x.exe",
            "command_line": "x",
            **({"parent": {"uid": f"c{i - 1}"}} if i else {}),
        }
        for i in range(CHAIN)
    ]
    write_events(graph, events_from_specs(specs))
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "slow.yml").write_text(yaml.safe_dump(SLOW))
    (folder / "fast.yml").write_text(FAST.read_text())
    code, out = sigma_import(str(folder), "--check", "--budget", "1s")
    assert code == 4, out
    (slow,) = [line for line in out.splitlines() if SLOW_ID in line]
    assert "OVER BUDGET (stopped at 1 s): disabled" in slow
    (fast,) = [line for line in out.splitlines() if FAST_ID in line]
    assert fast.endswith("0 matches)")
    state = json.loads((home / "state.json").read_text())["disabled"]
    assert set(state) == {SLOW_ID}
    assert state[SLOW_ID]["reason"].startswith("sigma import: over its time budget: past 1 s")
    # a later check it passes (the chain gone) turns it back on
    graph.write("MATCH (p:Process {host: 'chain'}) DETACH DELETE p")
    code, out = sigma_import(str(folder), "--check", "--budget", "1s")
    assert code == 0, out
    assert json.loads((home / "state.json").read_text())["disabled"] == {}


def test_check_on_loads_a_reference_data_set_into_a_scratch_instance(
    graph: Graph, home: Path, tmp_path: Path, neo4j_target: Neo4jTarget
) -> None:
    if neo4j_target.managed_instance is None:
        pytest.skip("--check-on needs a managed instance to use as the scratch one")
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "fast.yml").write_text(FAST.read_text())
    data = ROOT / "tests" / "data" / "sigma" / "samples" / FAST.name.replace(".yml", ".ndjson")
    # the test instance stands in for the scratch one: --check-on wipes and loads it
    code, out = sigma_import(
        str(folder), "--check-on", str(data), "--scratch-instance", neo4j_target.managed_instance
    )
    assert code == 0, out
    (line,) = [x for x in out.splitlines() if FAST_ID in x]
    assert line.endswith("1 matches)")  # the rule's own regression recording fires it
    assert graph.read("MATCH (p:Process) RETURN count(p) AS n", {})[0]["n"] > 0

"""The lineage extension on the real server: conditions on an ancestor or a descendant at any
depth, and the two example rules (queries/sigma/examples/) that write the seed rules'
graph-native semantics in Sigma, on generated and on real recordings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from provgraph.graph.tx import Graph
from provgraph.queries.engine import evaluate
from provgraph.queries.rule import Rule, load_rules
from provgraph.queries.sigma import compile_path
from sigma_common import DATA, ingest_records, records
from sysmon_records import Recorder, guid

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "queries" / "sigma" / "examples"
SYSTEM = "C:\\Windows\\System32\\"
MSBUILD = "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\MSBuild.exe"
NODE = "C:\\Program Files\\nodejs\\node.exe"


def example(name: str) -> Rule:
    (result,) = compile_path([EXAMPLES / name]).results
    assert result.rule is not None, result.reason
    return result.rule


def inline(tmp_path: Path, detection: dict[str, Any]) -> Rule:
    doc = {
        "title": "lineage test",
        "id": "41d2c0de-0000-4000-8000-000000000001",
        "logsource": {"category": "process_creation", "product": "windows"},
        "detection": detection,
    }
    path = tmp_path / "rule.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    (result,) = compile_path([path]).results
    assert result.rule is not None, result.reason
    return result.rule


def matched(graph: Graph, rule: Rule) -> set[str]:
    return {m.row["process_uid"] for m in evaluate(graph, rule)}


def uid(name: str) -> str:
    return "g:" + guid(name).lower()


@pytest.fixture
def trees(graph: Graph, tmp_path: Path) -> Graph:
    """ws1: wscript -> cmd -> MSBuild (a script host two levels up), devenv -> MSBuild;
    npm install (node npm-cli.js) -> cmd -> powershell; node server.js -> cmd /c npm-cli.js
    (the install words on a cmd, the node no installer) -> cmd."""
    rec = Recorder()
    rec.start(0, "wscript", SYSTEM + "wscript.exe", "wscript.exe C:\\Users\\a\\dropper.js")
    rec.start(1, "cmd1", SYSTEM + "cmd.exe", "cmd /c build.bat", "wscript", SYSTEM + "wscript.exe")
    rec.start(2, "msb1", MSBUILD, "MSBuild.exe evil.proj", "cmd1", SYSTEM + "cmd.exe")
    rec.start(3, "devenv", "C:\\VS\\devenv.exe", "devenv.exe app.sln")
    rec.start(4, "msb2", MSBUILD, "MSBuild.exe /nodemode:1", "devenv", "C:\\VS\\devenv.exe")
    npm = f'"{NODE}"  "C:\\Program Files\\nodejs\\node_modules\\npm\\bin\\npm-cli.js" install x'
    rec.start(10, "npm", NODE, npm)
    rec.start(11, "cmd2", SYSTEM + "cmd.exe", "cmd /d /s /c node setup.js", "npm", NODE)
    rec.start(
        12,
        "ps",
        SYSTEM + "WindowsPowerShell\\v1.0\\powershell.exe",
        "powershell -c iex",
        "cmd2",
        SYSTEM + "cmd.exe",
    )
    rec.start(20, "server", NODE, f'"{NODE}" server.js')
    rec.start(21, "cmd3", SYSTEM + "cmd.exe", "cmd /c node npm-cli.js ls", "server", NODE)
    rec.start(22, "cmd4", SYSTEM + "cmd.exe", "cmd /c whoami", "cmd3", SYSTEM + "cmd.exe")
    assert ingest_records(graph, rec.records, tmp_path) > 0
    return graph


def test_a_script_host_anywhere_above_msbuild(trees: Graph) -> None:
    rule = example("proc_creation_win_lineage_msbuild_below_script_host.yml")
    assert matched(trees, rule) == {uid("msb1")}  # wscript two levels up; devenv's is silent


def test_the_same_rule_on_the_parent_alone_misses_depth_two(trees: Graph, tmp_path: Path) -> None:
    rule = inline(
        tmp_path,
        {
            "m": {"Image|endswith": "\\MSBuild.exe"},
            "p": {"ParentImage|endswith": ["\\wscript.exe", "\\powershell.exe"]},
            "condition": "m and p",
        },
    )
    assert matched(trees, rule) == set()


def test_shells_anywhere_below_a_package_install(trees: Graph) -> None:
    rule = example("proc_creation_lineage_shell_below_package_install.yml")
    # cmd2 and powershell below `node npm-cli.js install`; cmd4's ancestors have the install
    # words (cmd3) and the node image (server) on two different processes: no match
    assert matched(trees, rule) == {uid("cmd2"), uid("ps")}


def test_descendants_and_negation(trees: Graph, tmp_path: Path) -> None:
    below = inline(
        tmp_path, {"d": {"DescendantImage|endswith": "\\powershell.exe"}, "condition": "d"}
    )
    assert matched(trees, below) == {uid("npm"), uid("cmd2")}
    not_below_node = inline(
        tmp_path,
        {
            "c": {"Image|endswith": "\\cmd.exe"},
            "n": {"AncestorImage|endswith": "\\node.exe"},
            "condition": "c and not n",
        },
    )
    assert matched(trees, not_below_node) == {uid("cmd1")}


def test_on_the_shai_hulud_recording_the_sigma_form_equals_the_shipped_rule(
    graph: Graph, tmp_path: Path
) -> None:
    ingest_records(
        graph, records(DATA / "sigma_shai_hulud_node_bun_execution.sysmon.ndjson"), tmp_path
    )
    sigma = matched(graph, example("proc_creation_lineage_shell_below_package_install.yml"))
    shipped = {
        m.row["process_uid"]
        for m in evaluate(graph, load_rules().get("dependency_compromise_shell_child"))
    }
    assert sigma == shipped
    assert len(sigma) == 1  # cmd /c node setup_bun.js, below `node npm-cli.js install`

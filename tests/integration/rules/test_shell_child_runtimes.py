"""dependency_compromise_shell_child on real recordings of node and python that are not
installing packages (SigmaHQ regression data, tests/data/runtimes/): a runtime is a package
manager only while it installs, and command-line patterns read real quoting. The pandas oracle
agrees with the Cypher on every case."""

from __future__ import annotations

from pathlib import Path

import pytest
from provgraph.graph.loader import write_events
from provgraph.graph.tx import Graph
from provgraph.ingest.reader import iter_events
from provgraph.queries.engine import evaluate
from provgraph.queries.reference import Model, build_model, events_frame
from provgraph.queries.rule import load_rules

from .oracle import graph_and_reference

DATA = Path(__file__).resolve().parents[2] / "data"
RUNTIMES = DATA / "runtimes"
RULE = load_rules().get("dependency_compromise_shell_child")

# the seed's notion: node, python, go and dotnet are package managers whatever they run
SEED_MANAGERS = [*RULE.parameters["package_managers"], *RULE.parameters["package_runtimes"]]

# recording -> (matches now, matches with the seed's notion of a package manager)
CASES = {
    # a Next.js server on node (CVE-2025-55182 exploited) runs `cmd /c whoami`
    "proc_creation_win_exploit_cve_2025_55182_susp_nodejs_server_child_process": (0, 1),
    # `node index.js` (a credential scanner) runs `cmd /c trufflehog …`
    "proc_creation_win_susp_script_interpretor_spawn_credential_scanner": (0, 1),
    # python3 -c "exec(base64…)" starts `"…\python.exe"  -c "…"`: two spaces and quotes, which
    # the seed's literal "python -c" never matched; normalised, it does (seed: a match)
    "proc_creation_win_python_base64_encoded_execution": (0, 1),
    # cmd starts node running npx-cli.js (npx installs and runs a package): no descendant
    "proc_creation_win_node_new_agent_skills_installed": (0, 0),
}


def _load(graph: Graph, *paths: Path) -> Model:
    events = [e for path in paths for e in iter_events(path)]
    assert events
    write_events(graph, events)
    return build_model(events_frame(events))


@pytest.mark.parametrize("name", sorted(CASES))
def test_runtimes_running_scripts_are_no_package_install(graph: Graph, name: str) -> None:
    model = _load(graph, RUNTIMES / f"{name}.ndjson")
    now, seed = CASES[name]
    cypher, reference = graph_and_reference(graph, RULE, model)
    assert cypher == reference
    assert len(cypher) == now
    cypher, reference = graph_and_reference(
        graph,
        RULE,
        model,
        package_managers=SEED_MANAGERS,
    )
    assert cypher == reference
    assert len(cypher) == seed


def test_the_npm_install_in_the_shai_hulud_recording_still_fires(graph: Graph) -> None:
    model = _load(graph, DATA / "sigma_shai_hulud_node_bun_execution.sysmon.ndjson")
    cypher, reference = graph_and_reference(graph, RULE, model)
    assert cypher == reference
    (match,) = evaluate(graph, RULE)
    assert "npm-cli.js" in match.row["package_manager_command_line"]
    assert match.row["command_line"].endswith("node setup_bun.js")
    assert match.row["depth"] == 1


def test_every_real_recording_agrees_with_the_oracle(graph: Graph) -> None:
    paths = sorted(RUNTIMES.glob("*.ndjson")) + sorted(DATA.glob("*.ndjson"))
    model = _load(graph, *paths)
    cypher, reference = graph_and_reference(graph, RULE, model)
    assert cypher == reference
    # all of them together: only the Shai-Hulud install's lifecycle shell
    assert len(cypher) == 1

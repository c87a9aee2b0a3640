"""`provgraph sigma import` without a database: the per-rule report, storage in the catalog's
Sigma folder (idempotent, updates replace, rules that stop compiling go), `rules list` and
`rules enable|disable` over imported rules, and exit statuses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from provgraph.queries.catalog import Catalog, UnknownRules
from typer.testing import CliRunner

from provgraph.cli.main import app

DATA = Path(__file__).resolve().parents[2] / "data" / "sigma" / "rules"
runner = CliRunner()
REG = "proc_creation_win_discovery_via_reg_queries.yml"
REG_ID = "sigma_0022869c_49f7_4ff2_ba03_85ac42ddac58"
CORRELATION = [
    {
        "title": "Reg query",
        "id": "77a0c000-0000-4000-8000-000000000001",
        "name": "reg_query",
        "logsource": {"category": "process_creation", "product": "windows"},
        "detection": {"sel": {"Image|endswith": "\\reg.exe"}, "condition": "sel"},
    },
    {
        "title": "Many reg queries",
        "id": "77a0c000-0000-4000-8000-000000000002",
        "author": "provgraph tests",
        "correlation": {
            "type": "event_count",
            "rules": ["reg_query"],
            "group-by": ["User"],
            "timespan": "5m",
            "condition": {"gte": 10},
        },
    },
]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    settings = tmp_path / "provgraph.yaml"
    settings.write_text("rules_home: rules-home\n")
    monkeypatch.setenv("PROVGRAPH_CONFIG", str(settings))
    return tmp_path / "rules-home"


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    folder = tmp_path / "sigma-src"
    shutil.copytree(DATA, folder)
    (folder / "correlation.yml").write_text(yaml.safe_dump_all(CORRELATION, sort_keys=False))
    return folder


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_import_stores_each_rule_once_and_the_catalog_lists_it(home: Path, sources: Path) -> None:
    code, out = invoke("sigma", "import", str(sources))
    assert code == 0, out
    assert out.count("\nnew ") + out.startswith("new ") == 9
    assert "part       " in out and "runs inside Many reg queries" in out
    assert "9 of 9 rules compiled (100.0%), 0 failed, 1 only inside correlations" in out
    stored = sorted(p.name for p in (home / "sigma").glob("*.yml"))
    assert len(stored) == 9 and f"{REG_ID}.yml" in stored
    code, out = invoke("rules", "list", "--json")
    assert code == 0, out
    listed = {r["id"]: r for r in json.loads(out)}
    assert listed[REG_ID]["source"] == "sigma" and listed[REG_ID]["enabled"] is True
    sigma = listed[REG_ID]["metadata"]["sigma"]
    assert sigma["id"] == "0022869c-49f7-4ff2-ba03-85ac42ddac58"
    assert sigma["author"] and sigma["level"] and sigma["status"] and sigma["tags"]
    assert "dependency_compromise_shell_child" in listed  # the shipped rules are still there

    before = {p.name: p.stat().st_mtime_ns for p in (home / "sigma").iterdir()}
    code, out = invoke("sigma", "import", str(sources))
    assert code == 0 and "stored in" in out and "9 unchanged" in out
    assert {p.name: p.stat().st_mtime_ns for p in (home / "sigma").iterdir()} == before


def test_an_updated_rule_replaces_its_version_and_a_broken_one_goes(
    home: Path, sources: Path
) -> None:
    assert invoke("sigma", "import", str(sources))[0] == 0
    path = sources / REG
    doc = yaml.safe_load(path.read_text())
    doc["level"] = "critical"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    code, out = invoke("sigma", "import", str(sources), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["stored"] == {"unchanged": 8, "updated": 1}
    assert "severity: critical" in (home / "sigma" / f"{REG_ID}.yml").read_text()

    doc["detection"]["selection_pe"] = {"TerminalSessionId": "1"}
    doc["detection"]["condition"] = "all of selection_*"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    code, out = invoke("sigma", "import", str(sources))
    assert code == 4  # some rule did not compile; the others were imported
    (line,) = [x for x in out.splitlines() if x.startswith("failed ")]
    assert "field 'TerminalSessionId' is not in the graph" in line
    assert "previously imported; the new version does not compile (field)" in line
    assert not (home / "sigma" / f"{REG_ID}.yml").exists()


def test_dry_run_stores_nothing(home: Path, sources: Path) -> None:
    code, out = invoke("sigma", "import", str(sources), "--dry-run")
    assert code == 0 and "would store in" in out and "9 new" in out
    assert not (home / "sigma").exists()


def test_disable_and_enable_survive_a_new_catalog(home: Path, sources: Path) -> None:
    assert invoke("sigma", "import", str(sources))[0] == 0
    code, out = invoke("rules", "disable", REG_ID, "--reason", "noisy here")
    assert code == 0 and f"{REG_ID} disabled" in out
    state = json.loads((home / "state.json").read_text())
    assert state["disabled"][REG_ID]["reason"] == "noisy here"
    view = Catalog().snapshot()  # a fresh process would read the same
    assert REG_ID not in {r.id for r in view.rules}
    assert view.get(REG_ID).enabled is False
    code, out = invoke("rules", "list")
    assert any(line.startswith(REG_ID) and line.endswith("[disabled]") for line in out.splitlines())
    refused = runner.invoke(app, ["rules", "run", "--rule", REG_ID])  # main() exits 2 on it
    assert isinstance(refused.exception, UnknownRules)
    assert "disabled: " + REG_ID in str(refused.exception)
    assert invoke("rules", "disable", "dependency_compromise_network")[0] == 0  # any rule
    assert invoke("rules", "enable", REG_ID) == (0, f"{REG_ID} enabled\n")
    assert REG_ID in {r.id for r in Catalog().rules()}
    unknown = runner.invoke(app, ["rules", "enable", "no_such_rule"])
    assert isinstance(unknown.exception, UnknownRules)
    assert "no such rule: no_such_rule" in str(unknown.exception)


def test_remove_and_usage_errors(home: Path, sources: Path) -> None:
    assert invoke("sigma", "import", str(sources))[0] == 0
    assert invoke("rules", "disable", REG_ID)[0] == 0
    code, out = invoke("sigma", "remove", REG_ID)
    assert code == 0 and out == f"removed {REG_ID}\n"
    assert REG_ID not in json.loads((home / "state.json").read_text())["disabled"]
    assert invoke("sigma", "remove", REG_ID)[0] == 2
    assert invoke("sigma", "import", str(sources / "missing"))[0] == 2
    code, out = invoke("sigma", "import", str(sources), "--check", "--budget", "soon")
    assert code == 2 and "--budget" in out

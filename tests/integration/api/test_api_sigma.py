"""Imported Sigma rules through the API: after ingest through the default catalog their alerts
carry the Sigma metadata (alert details and OCSF), and PATCH /rules/{id} disables them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from provgraph.graph.pipeline import ingest_sources
from provgraph.graph.target import Neo4jTarget
from provgraph.graph.tx import Graph
from provgraph.queries.engine import run_rules
from typer.testing import CliRunner

from provgraph.cli.main import app

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = (
    ROOT
    / "queries"
    / "sigma"
    / "examples"
    / "proc_creation_lineage_shell_below_package_install.yml"
)
BUN = ROOT / "tests" / "data" / "sigma_shai_hulud_node_bun_execution.sysmon.ndjson"
SIGMA_ID = "2b7c9e41-8d3f-4f6a-a1c2-5e9d0b3f7a24"
RULE_ID = "sigma_" + SIGMA_ID.replace("-", "_")


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


def test_alerts_of_imported_rules_carry_the_sigma_rule(
    graph: Graph, home: Path, client: TestClient, key: Callable[..., dict[str, str]]
) -> None:
    assert sigma_import(str(EXAMPLE))[0] == 0
    # ingest runs the catalog's rules over what arrived: the imported one among them
    report = ingest_sources(
        graph, str(BUN), rules=lambda g, since, until: run_rules(g, since=since, until=until)
    )
    assert report.rules is not None
    (run,) = [r for r in report.rules if r.rule_id == RULE_ID]
    assert (run.created, run.error) == (1, None)

    reader = key("read")
    (alert,) = client.get("/api/v1/alerts", headers=reader, params={"rule": RULE_ID}).json()[
        "items"
    ]
    detail = client.get(f"/api/v1/alerts/{alert['id']}", headers=reader).json()
    sigma = detail["rule"]["metadata"]["sigma"]
    source = yaml.safe_load(EXAMPLE.read_text())
    assert sigma["id"] == SIGMA_ID and sigma["title"] == source["title"]
    assert (sigma["level"], sigma["status"], sigma["author"]) == (
        "high",
        "experimental",
        "provgraph",
    )
    assert sigma["tags"] == source["tags"] and sigma["references"] == source["references"]
    assert sigma["falsepositives"] == source["falsepositives"]
    assert detail["rule"]["techniques"] == ["T1195.001"]
    roles = {e["role"] for e in detail["entities"]}
    assert {"process", "parent"} <= roles  # the matched entities, like every other alert
    finding = client.get(
        f"/api/v1/alerts/{alert['id']}", headers=reader, params={"format": "ocsf"}
    ).json()
    (related,) = finding["finding_info"]["analytic"]["related_analytics"]
    assert (related["uid"], related["category"]) == (SIGMA_ID, "Sigma")
    assert finding["finding_info"]["analytic"]["uid"] == RULE_ID

    shown = client.get(f"/api/v1/rules/{RULE_ID}", headers=reader).json()
    assert shown["source"] == "sigma" and shown["enabled"] is True
    assert shown["metadata"]["sigma"]["logsource"]["category"] == "process_creation"


def test_the_api_disables_and_enables_a_rule(
    graph: Graph, home: Path, client: TestClient, key: Callable[..., dict[str, str]]
) -> None:
    assert sigma_import(str(EXAMPLE))[0] == 0
    admin, triager = key("admin"), key("read", "triage")
    off = {"enabled": False}
    assert client.patch(f"/api/v1/rules/{RULE_ID}", headers=triager, json=off).status_code == 403
    changed = client.patch(f"/api/v1/rules/{RULE_ID}", headers=admin, json=off)
    assert changed.status_code == 200, changed.text
    assert (
        changed.json()["enabled"] is False
        and "through the API" in changed.json()["disabled"]["reason"]
    )
    listed = {r["id"]: r for r in client.get("/api/v1/rules", headers=triager).json()}
    assert listed[RULE_ID]["enabled"] is False
    ran = client.post("/api/v1/rules/run", headers=triager, json={}).json()["runs"]
    assert RULE_ID not in {r["rule_id"] for r in ran} and ran
    named = client.post("/api/v1/rules/run", headers=triager, json={"rules": [RULE_ID]})
    assert named.status_code == 404
    assert json.loads((home / "state.json").read_text())["disabled"][RULE_ID]
    on = client.patch(f"/api/v1/rules/{RULE_ID}", headers=admin, json={"enabled": True})
    assert on.json()["enabled"] is True
    assert client.patch("/api/v1/rules/nope", headers=admin, json=off).status_code == 404

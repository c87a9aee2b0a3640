"""Rules: list, show, run on demand through the engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from provgraph.graph.pipeline import ingest_sources
from provgraph.graph.tx import Graph

BUN = Path(__file__).parents[2] / "data" / "sigma_shai_hulud_node_bun_execution.sysmon.ndjson"


def test_list_show_and_run(
    client: TestClient, graph: Graph, key: Callable[..., dict[str, str]]
) -> None:
    reader = key("read")
    rules = client.get("/api/v1/rules", headers=reader).json()
    ids = {r["id"] for r in rules}
    assert "dependency_compromise_shell_child" in ids
    one = client.get("/api/v1/rules/dependency_compromise_shell_child", headers=reader).json()
    assert one["query"] and one["severity"] and one["techniques"]
    assert client.get("/api/v1/rules/nope", headers=reader).status_code == 404

    ingest_sources(graph, str(BUN), ensure=False)  # no rules run yet
    triager = key("triage")
    assert client.get("/api/v1/alerts", headers=reader).json()["items"] == []
    ran = client.post(
        "/api/v1/rules/run", headers=triager, json={"rules": ["dependency_compromise_shell_child"]}
    )
    assert ran.status_code == 200, ran.text
    (run,) = ran.json()["runs"]
    assert run["rule_id"] == "dependency_compromise_shell_child" and run["created"] >= 1
    assert len(client.get("/api/v1/alerts", headers=reader).json()["items"]) == run["created"]
    again = client.post("/api/v1/rules/run", headers=triager, json={}).json()["runs"]
    assert {r["rule_id"] for r in again} == ids
    assert sum(r["created"] for r in again) == 0  # reruns never duplicate

    unknown = client.post("/api/v1/rules/run", headers=triager, json={"rules": ["nope"]})
    assert unknown.status_code == 404
    backwards = client.post(
        "/api/v1/rules/run",
        headers=triager,
        json={"since": "2024-02-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"},
    )
    assert backwards.status_code == 400

"""Rules: list, show, run on demand through the engine; site settings apply to all three."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from provgraph.graph.pipeline import ingest_sources
from provgraph.graph.tx import Graph

from tests.integration.rules.site import (
    ALERTING_HOSTS,
    ALLOW_LIST,
    RULE,
    SITE_ALERTING_HOSTS,
    alerting_hosts,
    use_settings,
    write_registry_events,
)

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


def test_site_settings_apply_to_named_runs_and_show_on_the_rule(
    client: TestClient,
    graph: Graph,
    key: Callable[..., dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_settings(tmp_path, monkeypatch, ALLOW_LIST)
    shown = client.get(f"/api/v1/rules/{RULE}", headers=key("read")).json()
    assert shown["parameters"]["registry_allow_list"] == ["registry.corp.example"]
    assert shown["site_parameters"] == {"registry_allow_list": ["registry.corp.example"]}
    assert shown["parameters"]["package_managers"]  # the rest as shipped
    assert shown["time_limit_seconds"] == 120 and shown["source"] == "shipped"

    write_registry_events(graph)
    ran = client.post("/api/v1/rules/run", headers=key("triage"), json={"rules": [RULE]})
    assert ran.status_code == 200, ran.text
    (run,) = ran.json()["runs"]
    assert run["error"] is None and run["created"] == len(SITE_ALERTING_HOSTS)
    assert alerting_hosts(graph) == SITE_ALERTING_HOSTS


def test_named_runs_without_site_settings_alert_on_both_hosts(
    client: TestClient,
    graph: Graph,
    key: Callable[..., dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_settings(tmp_path, monkeypatch, "{}\n")  # the control for the test above
    shown = client.get(f"/api/v1/rules/{RULE}", headers=key("read")).json()
    assert shown["parameters"]["registry_allow_list"] == [] and shown["site_parameters"] == {}
    write_registry_events(graph)
    ran = client.post("/api/v1/rules/run", headers=key("triage"), json={"rules": [RULE]})
    assert ran.json()["runs"][0]["created"] == len(ALERTING_HOSTS)
    assert alerting_hosts(graph) == ALERTING_HOSTS


def test_settings_that_do_not_fit_the_rules_make_rules_unavailable(
    client: TestClient,
    key: Callable[..., dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = use_settings(tmp_path, monkeypatch, f"rules:\n  {RULE}:\n    registry_alow: []\n")
    answer = client.get("/api/v1/rules", headers=key("read"))
    assert answer.status_code == 503
    assert f"{settings}: rule '{RULE}' has no parameter 'registry_alow'" in answer.json()["detail"]
    ran = client.post("/api/v1/rules/run", headers=key("triage"), json={"rules": [RULE]})
    assert ran.status_code == 503

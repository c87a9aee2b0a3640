"""Subgraphs for analysts: Cytoscape elements that load as is, GraphML, bounds."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from provgraph.graph.tx import Graph
from provgraph.queries import subgraph as service

from tests.integration.api import scenario

NS = "{http://graphml.graphdrawing.org/xmlns}"


def _check_cytoscape(body: dict) -> tuple[set[str], set[tuple[str, str, str]]]:
    nodes = body["elements"]["nodes"]
    edges = body["elements"]["edges"]
    ids = [n["data"]["id"] for n in nodes]
    assert len(ids) == len(set(ids))
    for item in nodes:
        assert isinstance(item["data"]["label"], str)
    edge_ids = [e["data"]["id"] for e in edges]
    assert len(edge_ids) == len(set(edge_ids)) and not set(edge_ids) & set(ids)
    for edge in edges:
        assert edge["data"]["source"] in ids and edge["data"]["target"] in ids
    return set(ids), {(e["data"]["label"], e["data"]["source"], e["data"]["target"]) for e in edges}


def test_alert_subgraph_holds_ancestry_and_descendants(
    client: TestClient, loaded: Graph, key: Callable[..., dict[str, str]]
) -> None:
    alert = scenario.create_alert(
        loaded, entities=[{"label": "File", "key": scenario.PAYLOAD_KEY, "role": "payload"}]
    )
    reader = key("read")
    body = client.get(f"/api/v1/graph/alerts/{alert['id']}", headers=reader).json()
    ids, edges = _check_cytoscape(body)
    assert body["truncated"] is False
    assert body["roots"] == [f"Alert:{alert['id']}"]
    assert body["limits"]["max_nodes"] == 200  # the first view's budget (FIRST_VIEW_NODES)
    # Writer found from the file, its ancestry to the root, its descendants.
    for uid in ("explorer", "cmd", "pwsh", "payload", "whoami"):
        assert f"Process:g:{uid}" in ids
    assert ("SPAWNED", "Process:g:explorer", "Process:g:cmd") in edges
    assert ("WROTE", "Process:g:pwsh", "File:" + scenario.PAYLOAD_KEY) in edges
    assert ("EXECUTED", "Process:g:payload", "File:" + scenario.PAYLOAD_KEY) in edges
    assert ("INVOLVES", f"Alert:{alert['id']}", "File:" + scenario.PAYLOAD_KEY) in edges
    assert "Domain:c2.example" in ids and "Connection:203.0.113.7|443|tcp" in ids
    assert "Process:g:notepad" not in ids  # another host's process stays out
    pwsh = next(n["data"] for n in body["elements"]["nodes"] if n["data"]["id"] == "Process:g:pwsh")
    assert pwsh["kind"] == "Process" and pwsh["label"] == "powershell.exe (3000)"

    small = client.get(
        f"/api/v1/graph/alerts/{alert['id']}", params={"max_nodes": 4}, headers=reader
    ).json()
    assert small["truncated"] is True and len(small["elements"]["nodes"]) == 4
    _check_cytoscape(small)
    shallow = client.get(
        f"/api/v1/graph/alerts/{alert['id']}", params={"depth": 0, "ancestry": 0}, headers=reader
    ).json()
    assert shallow["truncated"] is True
    assert "Process:g:whoami" not in _check_cytoscape(shallow)[0]


def test_alert_naming_more_entities_than_the_budget_is_cut_and_flagged(
    client: TestClient, loaded: Graph, key: Callable[..., dict[str, str]]
) -> None:
    """An aggregated alert can name hundreds of processes: the subgraph takes entities up to
    the budget, context (host, file, connection) before processes, and says it cut."""
    alert = scenario.create_alert(
        loaded,
        entities=[
            *(
                {"label": "Process", "key": uid, "role": "actor"}
                for uid in ("g:explorer", "g:cmd", "g:pwsh", "g:payload", "g:whoami")
            ),
            {"label": "File", "key": scenario.PAYLOAD_KEY, "role": "payload"},
            {"label": "Host", "key": "ws1", "role": "host"},
        ],
    )
    reader = key("read")
    body = client.get(
        f"/api/v1/graph/alerts/{alert['id']}", params={"max_nodes": 5}, headers=reader
    ).json()
    ids, edges = _check_cytoscape(body)
    assert body["truncated"] is True
    assert len(ids) == 5
    assert {f"Alert:{alert['id']}", "File:" + scenario.PAYLOAD_KEY, "Host:ws1"} <= ids
    assert len([i for i in ids if i.startswith("Process:")]) == 2
    assert len([e for e in edges if e[0] == "INVOLVES"]) == 4
    whole = client.get(f"/api/v1/graph/alerts/{alert['id']}", headers=reader).json()
    assert whole["truncated"] is False
    assert {f"Process:g:{u}" for u in ("explorer", "cmd", "pwsh", "payload", "whoami")} <= (
        _check_cytoscape(whole)[0]
    )


def test_graphml_parses_with_the_same_counts(
    client: TestClient, loaded: Graph, key: Callable[..., dict[str, str]]
) -> None:
    alert = scenario.create_alert(loaded)
    reader = key("read")
    path = f"/api/v1/graph/alerts/{alert['id']}"
    cy = client.get(path, headers=reader).json()
    response = client.get(path, params={"format": "graphml"}, headers=reader)
    assert response.headers["content-type"].startswith("application/graphml+xml")
    root = ET.fromstring(response.content)
    graph_el = root.find(f"{NS}graph")
    assert graph_el is not None and graph_el.get("edgedefault") == "directed"
    nodes = graph_el.findall(f"{NS}node")
    edges = graph_el.findall(f"{NS}edge")
    assert len(nodes) == len(cy["elements"]["nodes"])
    assert len(edges) == len(cy["elements"]["edges"])
    node_ids = {n.get("id") for n in nodes}
    assert all(e.get("source") in node_ids and e.get("target") in node_ids for e in edges)
    declared = {k.get("id") for k in root.findall(f"{NS}key")}
    assert all(d.get("key") in declared for d in root.iter(f"{NS}data"))


def test_neighbourhood_expansion(
    client: TestClient,
    loaded: Graph,
    key: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader = key("read")
    body = client.get(
        "/api/v1/graph/neighbourhood", params={"node": "Process:g:pwsh"}, headers=reader
    ).json()
    ids, _ = _check_cytoscape(body)
    assert {
        "Process:g:cmd",
        "Process:g:payload",
        "File:" + scenario.PAYLOAD_KEY,
        "Connection:203.0.113.7|443|tcp",
        "Domain:c2.example",
        "Host:ws1",
    } <= ids
    assert "Process:g:whoami" not in ids  # two hops away

    spawned_only = client.get(
        "/api/v1/graph/neighbourhood",
        params={"node": "Process:g:pwsh", "rel": "SPAWNED", "depth": 2},
        headers=reader,
    ).json()
    ids, edges = _check_cytoscape(spawned_only)
    assert ids == {
        "Process:g:explorer",
        "Process:g:cmd",
        "Process:g:pwsh",
        "Process:g:payload",
        "Process:g:whoami",
    }
    assert {label for label, _, _ in edges} == {"SPAWNED"}

    host = client.get(
        "/api/v1/graph/neighbourhood", params={"node": "Host:ws2"}, headers=reader
    ).json()
    assert "Process:g:notepad" in _check_cytoscape(host)[0]

    # Edges among the nodes that the walk did not take come from a closing pass, which has
    # its own budget: pwsh SPAWNED payload, both one hop from the file (the walk follows
    # only WROTE and EXECUTED, so SPAWNED can only come from that pass; two hops reach the
    # processes' image files, which is all there is).
    around_file = {"node": "File:" + scenario.PAYLOAD_KEY, "rel": ["WROTE", "EXECUTED"], "depth": 2}
    closed = client.get("/api/v1/graph/neighbourhood", params=around_file, headers=reader).json()
    assert ("SPAWNED", "Process:g:pwsh", "Process:g:payload") in _check_cytoscape(closed)[1]
    assert closed["truncated"] is False
    # One hop fewer leaves the image files out, and the result must say so (the check looks
    # for any neighbour outside the result, not just the first one it meets).
    one_hop = client.get(
        "/api/v1/graph/neighbourhood", params={**around_file, "depth": 1}, headers=reader
    ).json()
    assert one_hop["truncated"] is True
    assert "File:ws1|" + scenario.PWSH.image.lower() not in _check_cytoscape(one_hop)[0]
    assert "File:ws1|" + scenario.PWSH.image.lower() in _check_cytoscape(closed)[0]
    monkeypatch.setattr(service, "EDGES_PER_NODE", 0)
    cut = client.get("/api/v1/graph/neighbourhood", params=around_file, headers=reader).json()
    assert "SPAWNED" not in {label for label, _, _ in _check_cytoscape(cut)[1]}
    assert cut["truncated"] is True

    missing = client.get(
        "/api/v1/graph/neighbourhood", params={"node": "Process:nope"}, headers=reader
    )
    assert missing.status_code == 404
    unknown_label = client.get(
        "/api/v1/graph/neighbourhood", params={"node": "Secret:x"}, headers=reader
    )
    assert unknown_label.status_code == 404

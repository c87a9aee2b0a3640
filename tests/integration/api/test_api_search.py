"""Search finds a starting node by what a responder remembers of it, on the real samples."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from provgraph.graph.pipeline import ingest_sources
from provgraph.graph.tx import Graph

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture
def samples(graph: Graph) -> Graph:
    ingest_sources(graph, sorted(DATA.glob("*.ndjson")))
    return graph


def test_search_by_name_path_host_and_address(
    samples: Graph, client: TestClient, key: Callable[..., dict[str, str]]
) -> None:
    headers = key("read")
    found = client.get(
        "/api/v1/search",
        params={"q": "MSBuild", "kind": "process", "host": "WORKSTATION6"},
        headers=headers,
    ).json()
    ids = {h["id"] for h in found["hits"]}
    assert "Process:g:d273d0f0-cc0c-5f67-0b08-000000000800" in ids
    assert all(h["kind"] == "process" and h["host"] == "workstation6" for h in found["hits"])
    # MSBuild itself first; processes that only name it on their command line after.
    named = ["msbuild" in h["label"].lower() for h in found["hits"]]
    assert named[0] and named == sorted(named, reverse=True), [h["label"] for h in found["hits"]]
    files = client.get(
        "/api/v1/search", params={"q": "TFMBBEV2.0.cs", "kind": "file"}, headers=headers
    ).json()["hits"]
    assert [h["label"] for h in files] == ["tfmbbev2.0.cs"]
    hosts = client.get(
        "/api/v1/search", params={"q": "ubuntu", "kind": "host"}, headers=headers
    ).json()["hits"]
    assert [h["id"] for h in hosts] == ["Host:ubuntu5"]
    addresses = client.get(
        "/api/v1/search", params={"q": "10.10.10.5", "kind": "address"}, headers=headers
    ).json()["hits"]
    assert "Connection:10.10.10.5|80|tcp" in {h["id"] for h in addresses}
    # A hit id is what the graph endpoints take.
    hood = client.get(
        "/api/v1/graph/neighbourhood", params={"node": files[0]["id"]}, headers=headers
    )
    assert hood.status_code == 200


def test_search_limit_and_scope(
    samples: Graph, client: TestClient, key: Callable[..., dict[str, str]]
) -> None:
    page = client.get("/api/v1/search", params={"q": "exe", "limit": 3}, headers=key("read")).json()
    assert len(page["hits"]) == 3 and page["truncated"] is True
    assert client.get("/api/v1/search", params={"q": "x"}).status_code == 401
    assert client.get("/api/v1/search", params={"q": "x"}, headers=key("ingest")).status_code == 403
    bad = client.get("/api/v1/search", params={"q": "x", "kind": "registry"}, headers=key("read"))
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(
        "application/problem+json"
    )

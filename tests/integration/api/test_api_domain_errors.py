"""The domain reads raise their own errors (queries.errors); the API answers each as the
same problem+json it always has: 404 naming the thing asked for, 400 for a cursor not ours."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from provgraph.graph.tx import Graph
from provgraph.queries.cursors import encode_cursor


def _problem(response: Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/" + slug) and body["status"] == status
    return body


def test_missing_things_are_404_naming_what_was_asked(
    client: TestClient, loaded: Graph, key: Callable[..., dict[str, str]]
) -> None:
    reader = key("read")
    cases = {
        "/api/v1/provenance/processes/g:nope": "process 'g:nope' does not exist",
        "/api/v1/alerts/nope": "alert 'nope' does not exist",
        "/api/v1/alerts/nope/audit": "alert 'nope' does not exist",
        "/api/v1/graph/alerts/nope": "alert 'nope' does not exist",
    }
    for path, detail in cases.items():
        body = _problem(client.get(path, headers=reader), 404, "not-found")
        assert body["detail"] == detail and body["instance"] == path
    file = client.get(
        "/api/v1/provenance/files", params={"path": "C:\\nope", "host": "ws1"}, headers=reader
    )
    assert _problem(file, 404, "not-found")["detail"] == "file 'C:\\\\nope' does not exist"
    for node in ("Process:g:nope", "Secret:x"):
        hood = client.get("/api/v1/graph/neighbourhood", params={"node": node}, headers=reader)
        assert _problem(hood, 404, "not-found")["detail"] == f"node {node!r} does not exist"
    patch = client.patch("/api/v1/alerts/nope", headers=key("triage"), json={"comment": "x"})
    assert _problem(patch, 404, "not-found")["detail"] == "alert 'nope' does not exist"


def test_cursors_not_ours_are_400(
    client: TestClient, loaded: Graph, key: Callable[..., dict[str, str]]
) -> None:
    reader = key("read")
    alerts_page = client.get("/api/v1/alerts", headers=reader).json()
    timeline = "/api/v1/provenance/hosts/ws1/timeline"
    # An alerts cursor is not a timeline cursor, and garbage is neither.
    for cursor in (alerts_page["next_cursor"], "!!not-ours"):
        body = _problem(
            client.get(timeline, params={"cursor": cursor}, headers=reader), 400, "invalid-cursor"
        )
        assert body["detail"].startswith("the cursor is not one this API issued for timeline")
    # Ours in kind but holding no place in the timeline (was a 500: a KeyError).
    hollow = encode_cursor("timeline", {"host": "ws1"})
    body = _problem(
        client.get(timeline, params={"cursor": hollow}, headers=reader), 400, "invalid-cursor"
    )
    assert body["detail"] == "the cursor does not hold a place in the timeline"
    first = client.get(timeline, params={"limit": 1}, headers=reader).json()["next_cursor"]
    other = client.get(
        "/api/v1/provenance/hosts/ws2/timeline", params={"cursor": first}, headers=reader
    )
    assert _problem(other, 400, "invalid-cursor")["detail"] == (
        "this cursor belongs to another host's timeline"
    )

"""Keys and scopes: 401 without a valid key, 403 with the wrong scope, for every endpoint."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from provgraph.api.keys.service import create_key, revoke_key
from provgraph.graph.tx import Graph

# (method, path, body, scope it needs)
ENDPOINTS = [
    ("GET", "/api/v1/alerts", None, "read"),
    ("GET", "/api/v1/alerts/x", None, "read"),
    ("GET", "/api/v1/alerts/x/audit", None, "read"),
    ("PATCH", "/api/v1/alerts/x", {"status": "closed"}, "triage"),
    ("GET", "/api/v1/graph/alerts/x", None, "read"),
    ("GET", "/api/v1/graph/neighbourhood?node=Host:ws1", None, "read"),
    ("GET", "/api/v1/provenance/processes/g:x", None, "read"),
    ("GET", "/api/v1/provenance/files?path=x", None, "read"),
    ("GET", "/api/v1/provenance/hosts/ws1/timeline", None, "read"),
    ("GET", "/api/v1/provenance/contacts?ip=203.0.113.7", None, "read"),
    ("POST", "/api/v1/query/cypher", {"query": "RETURN 1"}, "hunt"),
    ("POST", "/api/v1/ingest", None, "ingest"),
    ("GET", "/api/v1/rules", None, "read"),
    ("POST", "/api/v1/rules/run", {}, "triage"),
    ("GET", "/api/v1/webhooks", None, "admin"),
    ("POST", "/api/v1/webhooks", {"url": "http://127.0.0.1:9/x"}, "admin"),
    ("GET", "/api/v1/keys", None, "admin"),
    ("GET", "/metrics", None, "read"),
    ("GET", "/openapi.json", None, None),  # any valid key
]
SCOPES = ["read", "hunt", "triage", "ingest", "admin"]


def _call(client: TestClient, method: str, path: str, body: object, headers: dict[str, str]) -> int:
    return client.request(method, path, json=body, headers=headers).status_code


@pytest.mark.parametrize(
    ("method", "path", "body", "needs"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS]
)
def test_scope_table(
    client: TestClient, graph: Graph, method: str, path: str, body: object, needs: str | None
) -> None:
    missing = client.request(method, path, json=body)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.headers["content-type"] == "application/problem+json"
    assert _call(client, method, path, body, {"X-API-Key": "pgk_000000000000_wrong"}) == 401
    assert _call(client, method, path, body, {"Authorization": "Bearer junk"}) == 401

    for scope in SCOPES:
        secret = create_key(graph, name=scope, scopes=[scope]).secret
        for headers in ({"Authorization": f"Bearer {secret}"}, {"X-API-Key": secret}):
            status = _call(client, method, path, body, headers)
            allowed = needs is None or scope in (needs, "admin")
            if allowed:
                assert status not in (401, 403), (scope, status)
            else:
                assert status == 403, (scope, status)


def test_forbidden_names_the_scope(client: TestClient, key: Callable[..., dict[str, str]]) -> None:
    response = client.patch("/api/v1/alerts/x", headers=key("read"), json={"status": "closed"})
    assert response.status_code == 403
    body = response.json()
    assert body["required_scope"] == "triage" and "triage" in body["detail"]
    assert set(body) >= {"type", "title", "status", "detail", "instance"}


def test_revoked_and_tampered_keys_are_refused(client: TestClient, graph: Graph) -> None:
    created = create_key(graph, name="soon-revoked", scopes=["read"])
    headers = {"Authorization": f"Bearer {created.secret}"}
    assert client.get("/api/v1/alerts", headers=headers).status_code == 200
    tampered = {"Authorization": f"Bearer {created.secret[:-2]}xx"}
    assert client.get("/api/v1/alerts", headers=tampered).status_code == 401
    revoke_key(graph, key_id=created.id)
    assert client.get("/api/v1/alerts", headers=headers).status_code == 401
    stored = graph.read("MATCH (k:ApiKey {id: $id}) RETURN k.hash AS hash", {"id": created.id})
    assert stored[0]["hash"].startswith("pgs1:")  # sealed: see test_api_security.py
    assert created.secret.split("_", 2)[2] not in stored[0]["hash"]


def test_a_key_revoked_here_is_refused_at_once_despite_the_cache(
    make_client: Callable[..., TestClient], graph: Graph, admin: dict[str, str]
) -> None:
    client = make_client(key_cache_seconds=600.0)  # a remembered answer would outlive the test
    created = create_key(graph, name="cached-then-revoked", scopes=["read"])
    headers = {"Authorization": f"Bearer {created.secret}"}
    assert client.get("/api/v1/alerts", headers=headers).status_code == 200  # now cached
    assert client.delete(f"/api/v1/keys/{created.id}", headers=admin).status_code == 200
    refused = client.get("/api/v1/alerts", headers=headers)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    # An unknown or malformed key is refused without a lookup, cached or not.
    assert client.get("/api/v1/alerts", headers={"X-API-Key": "pgk_nope"}).status_code == 401


def test_health_needs_no_key(client: TestClient, graph: Graph) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["neo4j"].startswith("Neo4j Kernel")


def test_metrics_count_requests(client: TestClient, key: Callable[..., dict[str, str]]) -> None:
    reader = key("read")
    client.get("/api/v1/alerts", headers=reader)
    text = client.get("/metrics", headers=reader).text
    assert 'provgraph_http_requests_total{method="GET",route="/api/v1/alerts",status="200"}' in text
    assert "provgraph_http_request_duration_seconds_bucket" in text


def test_unknown_route_and_crash_are_problems(
    make_client: Callable[..., TestClient], key: Callable[..., dict[str, str]]
) -> None:
    client = make_client()
    reader = key("read")
    unknown = client.get("/api/v1/nowhere", headers=reader)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"

    @client.app.get("/boom")  # type: ignore[attr-defined]
    def boom() -> None:
        raise RuntimeError("secret internals")

    crashed = client.get("/boom")
    assert crashed.status_code == 500
    assert crashed.headers["content-type"] == "application/problem+json"
    assert "secret internals" not in crashed.text and "Traceback" not in crashed.text

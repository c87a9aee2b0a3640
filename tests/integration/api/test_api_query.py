"""Ad-hoc Cypher: Neo4j refuses writes, rows are capped, time is limited."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from provgraph.graph.tx import Graph

Q = "/api/v1/query/cypher"
COUNT = "MATCH (n) RETURN count(n) AS n"


def test_reads_return_rows_and_graph_values(
    client: TestClient, loaded: Graph, key: Callable[..., dict[str, str]]
) -> None:
    body = client.post(
        Q,
        headers=key("hunt"),
        json={
            "query": "MATCH (p:Process {uid: $uid})-[r:SPAWNED]->(c) "
            "RETURN p, r, c, c.name AS child",
            "parameters": {"uid": "g:pwsh"},
        },
    ).json()
    assert body["columns"] == ["p", "r", "c", "child"] and body["row_count"] == 1
    row = body["rows"][0]
    assert row["p"]["id"] == "Process:g:pwsh" and row["p"]["labels"] == ["Process"]
    assert row["r"]["type"] == "SPAWNED" and row["r"]["end"] == "Process:g:payload"
    assert row["child"] == "payload.exe"


@pytest.mark.parametrize(
    "query",
    [
        "CREATE (:Marker {x: 1})",
        "MATCH (p:Process) SET p.name = 'pwned'",
        "MATCH (n) DETACH DELETE n",
        "MERGE (k:ApiKey {id: 'x', scopes: ['admin']}) RETURN k",
        "CREATE INDEX sneaky IF NOT EXISTS FOR (n:Process) ON (n.user)",
        "MATCH (p:Process) WITH p LIMIT 1 CALL (p) { SET p.x = 1 } RETURN 1",
    ],
)
def test_writes_are_refused_by_the_server(
    client: TestClient, loaded: Graph, key: Callable[..., dict[str, str]], query: str
) -> None:
    reader = key("hunt")
    before = loaded.read("MATCH (n) RETURN count(n) AS n, sum(size(keys(n))) AS props")[0]
    response = client.post(Q, headers=reader, json={"query": query})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/write-refused")
    assert "read" in response.json()["detail"]
    after = loaded.read("MATCH (n) RETURN count(n) AS n, sum(size(keys(n))) AS props")[0]
    assert after == before
    assert loaded.read("SHOW INDEXES YIELD name WHERE name = 'sneaky' RETURN name") == []


def test_row_cap_and_timeout(
    client: TestClient,
    graph: Graph,
    key: Callable[..., dict[str, str]],
    make_client: Callable[..., TestClient],
) -> None:
    reader = key("hunt")
    capped = client.post(
        Q, headers=reader, json={"query": "UNWIND range(1, 1000000) AS i RETURN i", "max_rows": 5}
    ).json()
    assert capped["rows"] == [{"i": i} for i in range(1, 6)] and capped["truncated"] is True
    whole = client.post(
        Q, headers=reader, json={"query": "UNWIND range(1, 3) AS i RETURN i", "max_rows": 3}
    ).json()
    assert whole["truncated"] is False and whole["row_count"] == 3

    strict = make_client(query_timeout_seconds=0.5)
    slow = strict.post(
        Q,
        headers=reader,
        json={
            "query": "UNWIND range(1, 100000000) AS i WITH i WHERE i = -1 RETURN count(i)",
            "timeout_seconds": 30,
        },
    )
    assert slow.status_code == 504, slow.text
    assert slow.json()["type"].endswith("/query-timeout")


def test_outside_reads_and_bad_cypher(
    client: TestClient, graph: Graph, key: Callable[..., dict[str, str]]
) -> None:
    reader = key("hunt")
    csv = client.post(
        Q, headers=reader, json={"query": "LOAD CSV FROM 'file:///etc/passwd' AS line RETURN line"}
    )
    assert csv.status_code == 400 and csv.json()["type"].endswith("/outside-graph")
    proc = client.post(
        Q, headers=reader, json={"query": "CALL dbms.listConfig() YIELD name RETURN name"}
    )
    assert proc.status_code == 400
    allowed = client.post(
        Q, headers=reader, json={"query": "CALL db.labels() YIELD label RETURN label"}
    )
    assert allowed.status_code == 200
    syntax = client.post(Q, headers=reader, json={"query": "MATCH (n RETURN n"})
    assert syntax.status_code == 400 and syntax.json()["type"].endswith("/query-refused")

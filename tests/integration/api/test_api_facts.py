"""A process's many small facts come summarised (counts per kind) and page out on expand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from provgraph.graph.loader import write_events
from provgraph.graph.tx import Graph
from provgraph.ingest.model import Event, FileOp, Kind, Origin
from provgraph.queries.subgraph import FACT_RELS, FACTS_INLINE

from tests.integration.api import scenario

WRITES = 23  # past FACTS_INLINE: summarised; paged 10 at a time below
DROPS = r"C:\Users\alice\AppData\Local\Temp\drop{:02d}.dll"


def _load_noisy_writer(graph: Graph) -> None:
    """The scenario, and powershell writing WRITES more files (one of them twice)."""
    scenario.load(graph)
    events = [
        Event(
            Kind.FILE_WRITE,
            scenario.T0 + timedelta(seconds=21 + i),
            "ws1",
            scenario.PWSH,
            Origin("sysmon", "tests/noisy.ndjson", i + 1),
            file_path=DROPS.format(i),
            file_op=FileOp.CREATE,
            raw={"EventID": 11, "TargetFilename": DROPS.format(i)},
        )
        for i in range(WRITES)
    ]
    write_events(graph, events)


def _nodes(body: dict) -> dict[str, dict]:
    return {n["data"]["id"]: n["data"] for n in body["elements"]["nodes"]}


def test_alert_subgraph_summarises_a_process_s_many_writes(
    client: TestClient, graph: Graph, key: Callable[..., dict[str, str]]
) -> None:
    _load_noisy_writer(graph)
    alert = scenario.create_alert(graph)
    reader = key("read")
    body = client.get(f"/api/v1/graph/alerts/{alert['id']}", headers=reader).json()
    nodes = _nodes(body)
    group_id = "Group:WROTE:Process:g:pwsh"
    # The 24 files powershell wrote are one Group node with their count, not 24 nodes...
    assert nodes[group_id]["kind"] == "Group"
    assert nodes[group_id]["count"] == WRITES + 1 and nodes[group_id]["of"] == "File"
    assert not [
        i for i in nodes if i.startswith("File:ws1|c:\\users\\alice\\appdata\\local\\temp\\drop")
    ]
    # ...except the payload, an entity of the alert, which is drawn on its own as well.
    assert nodes[group_id]["shown"] == 1
    assert "File:" + scenario.PAYLOAD_KEY in nodes
    edges = {(e["data"]["source"], e["data"]["target"]) for e in body["elements"]["edges"]}
    assert ("Process:g:pwsh", group_id) in edges
    assert body["groups"] == [
        {
            "id": group_id,
            "node": "Process:g:pwsh",
            "rel": "WROTE",
            "of": "File",
            "count": WRITES + 1,
            "shown": 1,
        }
    ]
    # Small kinds still come whole: powershell's one connection and one DNS name.
    assert "Connection:203.0.113.7|443|tcp" in nodes and "Domain:c2.example" in nodes
    assert not any(g["rel"] in ("CONNECTED_TO", "RESOLVED") for g in body["groups"])


def test_facts_page_through_a_group_in_time_order(
    client: TestClient, graph: Graph, key: Callable[..., dict[str, str]]
) -> None:
    _load_noisy_writer(graph)
    reader = key("read")
    seen: list[str] = []
    times: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"node": "Process:g:pwsh", "rel": "WROTE", "limit": 10}
        if cursor:
            params["cursor"] = cursor
        response = client.get("/api/v1/graph/facts", params=params, headers=reader)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert page["total"] == WRITES + 1
        files = [n["data"] for n in page["elements"]["nodes"] if n["data"]["kind"] == "File"]
        edges = page["elements"]["edges"]
        assert len(edges) == len(files) and {e["data"]["source"] for e in edges} == {
            "Process:g:pwsh"
        }
        seen += [f["id"] for f in files]
        times += [e["data"]["first_time"] for e in edges]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == WRITES + 1
    assert times == sorted(times)
    assert seen[0] == "File:" + scenario.PAYLOAD_KEY  # written first, at T0 + 20 s


def test_facts_refuses_what_is_not_a_group(
    client: TestClient, graph: Graph, key: Callable[..., dict[str, str]]
) -> None:
    _load_noisy_writer(graph)
    reader = key("read")
    assert "SPAWNED" not in FACT_RELS and FACTS_INLINE < WRITES
    tree = client.get(
        "/api/v1/graph/facts", params={"node": "Process:g:pwsh", "rel": "SPAWNED"}, headers=reader
    )
    assert tree.status_code == 400
    missing = client.get(
        "/api/v1/graph/facts", params={"node": "Process:g:nosuch", "rel": "WROTE"}, headers=reader
    )
    assert missing.status_code == 404
    first = client.get(
        "/api/v1/graph/facts",
        params={"node": "Process:g:pwsh", "rel": "WROTE", "limit": 5},
        headers=reader,
    ).json()
    other = client.get(
        "/api/v1/graph/facts",
        params={"node": "Process:g:cmd", "rel": "WROTE", "cursor": first["next_cursor"]},
        headers=reader,
    )
    assert other.status_code == 400
    unauthenticated = client.get(
        "/api/v1/graph/facts", params={"node": "Process:g:pwsh", "rel": "WROTE"}
    )
    assert unauthenticated.status_code == 401


def test_neighbourhood_of_a_noisy_process_is_summarised(
    client: TestClient, graph: Graph, key: Callable[..., dict[str, str]]
) -> None:
    _load_noisy_writer(graph)
    body = client.get(
        "/api/v1/graph/neighbourhood", params={"node": "Process:g:pwsh"}, headers=key("read")
    ).json()
    nodes = _nodes(body)
    assert nodes["Group:WROTE:Process:g:pwsh"]["count"] == WRITES + 1
    # Its parent and child are still there, walked as before.
    assert "Process:g:cmd" in nodes and "Process:g:payload" in nodes


def test_process_lineage_counts_every_kind_and_lists_a_few(
    client: TestClient, graph: Graph, key: Callable[..., dict[str, str]]
) -> None:
    _load_noisy_writer(graph)
    body = client.get(
        "/api/v1/provenance/processes/g:pwsh", params={"activity": 3}, headers=key("read")
    ).json()
    # every kind of fact, the account it ran as included
    assert body["facts"] == {
        "WROTE": WRITES + 1,
        "CONNECTED_TO": 1,
        "RESOLVED": 1,
        "EXECUTED": 1,
        "RAN_AS": 1,
    }
    assert len(body["wrote"]) == 3  # the first three; /graph/facts has the rest
    assert body["wrote"][0]["path"] == scenario.PAYLOAD
    (child,) = body["descendants"]
    assert child["process"]["uid"] == "g:payload"
    assert child["facts"] == {"EXECUTED": 1, "CONNECTED_TO": 1, "RAN_AS": 1}

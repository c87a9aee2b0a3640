"""Defender capture files and Elastic Defend dns events become graph shapes on the real
server, with evidence that names the record inside the capture file."""

from __future__ import annotations

import json
from pathlib import Path

from provgraph.graph.pipeline import ingest_sources
from provgraph.graph.tx import Graph

from tests.unit.ingest.test_ecs_dns import LOOKUP_RESULT
from tests.unit.ingest.test_mde_export import all_records


def test_an_event_hub_capture_file_becomes_the_graph_of_its_flat_rows(
    graph: Graph, tmp_path: Path
) -> None:
    records = all_records()
    capture = tmp_path / "eventhub-capture.json"
    spoilt = json.dumps({"records": records}, indent=2)
    spoilt = spoilt.replace('"RemotePort": 443,', '"RemotePort": 443,,')  # record 3: not JSON
    capture.write_text(spoilt)
    dead = tmp_path / "dead.ndjson"
    report = ingest_sources(graph, [capture], dead_letters=dead)
    assert (report.summary.accepted, report.written) == (2, 2)
    [letter] = [json.loads(line) for line in dead.read_text().splitlines()]
    assert (letter["line"], letter["path"]) == (3, str(capture))
    spawned = graph.read(
        "MATCH (p:Process)-[s:SPAWNED]->(c:Process)-[:ON_HOST]->(h:Host) "
        "RETURN p.name AS parent, c.name AS child, c.pid AS pid, h.name AS host, s.source AS src"
    )
    assert spawned == [
        {
            "parent": "winword.exe",
            "child": "powershell.exe",
            "pid": 4312,
            "host": "ws7",
            "src": f"mde:{capture}:1",
        }
    ]
    wrote = graph.read(
        "MATCH (p:Process {pid: 4312})-[w:WROTE]->(f:File) "
        "RETURN f.path AS path, w.ops AS ops, w.sources AS sources, w.raw AS raw"
    )
    assert len(wrote) == 1 and wrote[0]["ops"] == ["create"]
    assert wrote[0]["path"].lower().endswith("\\temp\\stage.ps1")
    assert wrote[0]["sources"] == [f"mde:{capture}:2"]
    raw = json.loads(wrote[0]["raw"])  # the first record's row, as parsed
    assert (raw["Table"], raw["ReportId"]) == ("DeviceFileEvents", 902)
    # fixed and ingested again: the third record joins the same process, nothing doubles
    capture.write_text(json.dumps({"records": records}))
    again = ingest_sources(graph, [capture])
    assert again.summary.accepted == 3
    connected = graph.read(
        "MATCH (p:Process {pid: 4312})-[r:CONNECTED_TO]->(c:Connection) "
        "RETURN c.ip AS ip, c.port AS port, r.count AS count"
    )
    assert connected == [{"ip": "203.0.113.9", "port": 443, "count": 1}]
    assert graph.read("MATCH (p:Process {pid: 4312}) RETURN count(p) AS n") == [{"n": 1}]


def test_elastic_defend_dns_lookups_resolve_domains(graph: Graph, tmp_path: Path) -> None:
    request = json.loads(json.dumps(LOOKUP_RESULT))
    request["event"]["action"] = "lookup_requested"
    later = json.loads(json.dumps(LOOKUP_RESULT))
    later["@timestamp"] = "2024-05-01T09:30:00.000Z"
    later["dns"]["resolved_ip"] = ["203.0.113.11"]
    path = tmp_path / "endpoint-network.ndjson"
    path.write_text("\n".join(json.dumps(r) for r in (request, LOOKUP_RESULT, later)) + "\n")
    report = ingest_sources(graph, [path])
    assert report.written == 2
    rows = graph.read(
        "MATCH (p:Process)-[r:RESOLVED]->(d:Domain) "
        "RETURN p.uid AS uid, d.name AS name, r.count AS count, r.answers AS answers, "
        "r.sources AS sources"
    )
    assert rows == [
        {
            "uid": "e:" + LOOKUP_RESULT["process"]["entity_id"],
            "name": "payload.example",
            "count": 2,
            "answers": ["203.0.113.9", "203.0.113.10", "203.0.113.11"],
            "sources": [f"ecs:{path}:2", f"ecs:{path}:3"],
        }
    ]

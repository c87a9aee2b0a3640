"""Ingest over HTTP through the CLI's pipeline, with real sample data, gzip and limits."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from provgraph.graph.tx import Graph

DATA = Path(__file__).parents[2] / "data"
VS = DATA / "evtxattack_visual_studio_prebuild_event.sysmon.ndjson"
NPM = DATA / "sigma_shai_hulud_npm_package_installation.sysmon.ndjson"
BUN = DATA / "sigma_shai_hulud_node_bun_execution.sysmon.ndjson"
EP = "/api/v1/ingest"


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def test_ndjson_counts_and_idempotence(
    client: TestClient, graph: Graph, key: Callable[..., dict[str, str]]
) -> None:
    headers = {**key("ingest"), "Content-Type": "application/x-ndjson"}
    body = VS.read_bytes()
    first = client.post(EP, content=body, headers=headers, params={"run_rules": "false"})
    assert first.status_code == 200, first.text
    result = first.json()
    records = len(_lines(VS))
    assert result["bytes_received"] == len(body) and result["source"].startswith("<http>")
    assert (
        result["accepted"] + sum(result["skipped"].values()) + sum(result["rejected"].values())
        == records
    )
    assert result["accepted"] > 0 and result["written"] > 0
    nodes = graph.read("MATCH (n) RETURN count(n) AS n")[0]["n"]
    again = client.post(EP, content=body, headers=headers, params={"run_rules": "false"})
    assert again.json()["accepted"] == result["accepted"]
    assert graph.read("MATCH (n) RETURN count(n) AS n")[0]["n"] == nodes  # nothing new
    # Provenance from the HTTP ingest keeps its source reference.
    sources = graph.read(
        "MATCH (p:Process) WHERE size(p.sources) > 0 RETURN p.sources[0] AS s LIMIT 1"
    )[0]["s"]
    assert "<http>" in sources


def test_gzip_and_json_array_and_named_format(
    client: TestClient, graph: Graph, key: Callable[..., dict[str, str]]
) -> None:
    ingester = key("ingest")
    zipped = client.post(
        EP,
        content=gzip.compress(NPM.read_bytes()),
        params={"run_rules": False},
        headers={**ingester, "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
    )
    assert zipped.status_code == 200, zipped.text
    assert zipped.json()["bytes_decoded"] == len(NPM.read_bytes())
    as_gzip_type = client.post(
        EP,
        content=gzip.compress(NPM.read_bytes()),
        params={"run_rules": False},
        headers={**ingester, "Content-Type": "application/gzip"},
    )
    assert as_gzip_type.json()["accepted"] == zipped.json()["accepted"] > 0

    array = json.dumps([json.loads(line) for line in _lines(BUN)]).encode()
    arrayed = client.post(
        EP,
        content=array,
        params={"run_rules": False, "format": "windows"},
        headers={**ingester, "Content-Type": "application/json"},
    )
    assert arrayed.status_code == 200, arrayed.text
    assert arrayed.json()["accepted"] > 0 and arrayed.json()["format"] == "windows"

    junk_body = b'{"not": "telemetry"}\nnot json at all\n'
    unknown = client.post(
        EP,
        content=junk_body,
        params={"run_rules": False},
        headers={**ingester, "Content-Type": "application/x-ndjson"},
    )
    assert unknown.status_code == 400 and "format" in unknown.json()["detail"]
    junk = client.post(
        EP,
        content=junk_body,
        params={"run_rules": False, "format": "windows"},
        headers={**ingester, "Content-Type": "application/x-ndjson"},
    )
    assert junk.status_code == 200
    assert junk.json()["accepted"] == 0
    assert sum(junk.json()["rejected"].values()) == 2
    assert "malformed JSON" in junk.json()["rejected"]


def test_limits_and_bad_bodies(
    make_client: Callable[..., TestClient], graph: Graph, key: Callable[..., dict[str, str]]
) -> None:
    client = make_client(max_ingest_bytes=10_000, max_decompressed_bytes=20_000)
    ingester = {**key("ingest"), "Content-Type": "application/x-ndjson"}
    big = client.post(EP, content=VS.read_bytes(), headers=ingester)
    assert big.status_code == 413
    assert big.headers["content-type"] == "application/problem+json"
    assert big.json()["limit"] == 10_000
    bomb = gzip.compress(b"{}\n" * 1_000_000)
    assert len(bomb) < 10_000
    exploded = client.post(EP, content=bomb, headers={**ingester, "Content-Encoding": "gzip"})
    assert exploded.status_code == 413 and "decompressed" in exploded.json()["detail"]
    wrong_type = client.post(EP, content=b"x", headers={**ingester, "Content-Type": "image/png"})
    assert wrong_type.status_code == 415
    not_gzip = client.post(EP, content=b"plain", headers={**ingester, "Content-Encoding": "gzip"})
    assert not_gzip.status_code == 400
    empty = client.post(EP, content=b"", headers=ingester)
    assert empty.status_code == 400


def test_ingest_runs_rules_and_alerts_follow(
    client: TestClient, graph: Graph, key: Callable[..., dict[str, str]]
) -> None:
    response = client.post(
        EP,
        content=BUN.read_bytes(),
        headers={**key("ingest"), "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    runs = response.json()["rules"]
    assert runs and all(r["error"] is None for r in runs)
    created = sum(r["created"] for r in runs)
    reader = key("read")
    alerts = client.get("/api/v1/alerts", headers=reader).json()["items"]
    assert len(alerts) == created >= 1  # the sample: a shell below a package install
    for alert in alerts:
        sub = client.get(f"/api/v1/graph/alerts/{alerts[0]['id']}", headers=reader).json()
        ids = {n["data"]["id"] for n in sub["elements"]["nodes"]}
        assert all(
            e["data"]["source"] in ids and e["data"]["target"] in ids
            for e in sub["elements"]["edges"]
        )
        assert any(n["data"]["kind"] == "Process" for n in sub["elements"]["nodes"])
        detail = client.get(f"/api/v1/alerts/{alert['id']}", headers=reader).json()
        assert detail["rule"]["id"] == alert["rule_id"] == "dependency_compromise_shell_child"
        assert detail["entities"]
        assert detail["evidence"] and any(e["raw"] for e in detail["evidence"])

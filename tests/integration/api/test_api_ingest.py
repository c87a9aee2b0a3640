"""Ingest over HTTP through the CLI's pipeline, with real sample data, gzip and limits."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from provgraph.graph.tx import Graph
from provgraph.ingest.evtx_file import FILE_HEADER_SIZE

from tests.unit.ingest.evtx_samples import NETEXEC, build, record_spans

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


def test_rejections_carry_line_and_reason_and_a_junk_first_line_hides_nothing(
    client: TestClient, graph: Graph, key: Callable[..., dict[str, str]]
) -> None:
    headers = {**key("ingest"), "Content-Type": "application/x-ndjson"}
    body = b"\x00garbage\n" + BUN.read_bytes()
    for params in ({"run_rules": "false"}, {"run_rules": "false", "format": "sysmon"}):
        response = client.post(EP, content=body, headers=headers, params=params)
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["accepted"] == 6 and result["written"] > 0 and result["problem"] is None
        assert result["rejections_total"] == 1
        [rejection] = result["rejections"]
        assert rejection["line"] == 1 and rejection["raw"] == "\x00garbage"
        assert rejection["reason"].startswith("malformed JSON") and rejection["field"] is None
        assert rejection["path"] == result["source"]
    assert graph.read("MATCH (p:Process) RETURN count(p) AS n")[0]["n"] > 0


def test_rejections_are_capped_and_the_total_is_told(
    client: TestClient, graph: Graph, key: Callable[..., dict[str, str]]
) -> None:
    good = _lines(BUN)
    bad = [f'{{"EventID": 1, "SourceName": "Microsoft-Windows-Sysmon", "cut{i}' for i in range(150)]
    body = ("\n".join(good[:1] + bad + good[1:]) + "\n").encode()
    response = client.post(
        EP,
        content=body,
        params={"run_rules": "false"},
        headers={**key("ingest"), "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 6 and result["rejections_total"] == 150
    assert [r["line"] for r in result["rejections"]] == list(range(2, 102))
    assert "rejections" not in result["summary"]  # told once, not twice


def test_a_body_that_gives_nothing_says_why(
    client: TestClient, graph: Graph, key: Callable[..., dict[str, str]]
) -> None:
    ingester = {**key("ingest"), "Content-Type": "application/x-ndjson"}
    junk = b"garbage\nmore garbage\n"
    refused = client.post(EP, content=junk, params={"run_rules": "false"}, headers=ingester)
    assert refused.status_code == 400 and "?format=" in refused.json()["detail"]
    named = client.post(
        EP, content=junk, params={"run_rules": "false", "format": "ecs"}, headers=ingester
    )
    assert named.status_code == 200, named.text
    result = named.json()
    assert result["accepted"] == 0 and [r["line"] for r in result["rejections"]] == [1, 2]
    assert result["problem"] == "no events from 2 record(s): 2 rejected"


@pytest.mark.skipif(not NETEXEC.exists(), reason="the shared SigmaHQ regression data is absent")
def test_an_evtx_body_cut_short_keeps_its_whole_records_and_says_so(
    client: TestClient, graph: Graph, key: Callable[..., dict[str, str]]
) -> None:
    data, _ = build(NETEXEC)
    cut = FILE_HEADER_SIZE + record_spans(data[FILE_HEADER_SIZE:])[3][0] + 100
    response = client.post(
        EP,
        content=data[:cut],
        params={"run_rules": "false"},
        headers={**key("ingest"), "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 3 and result["rejected"] == {"EVTX file cut short": 4}
    assert [r["line"] for r in result["rejections"]] == [4, 5, 6, 7]
    assert result["problem"].startswith("cut short: the file ends")
    written = graph.read("MATCH ()-[w:WROTE]->(:File) RETURN count(w) AS n")[0]["n"]
    assert written == 3  # the three Sysmon 11 file creations before the cut

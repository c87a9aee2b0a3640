"""Provenance for responders: concrete questions about the scenario, answered."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from provgraph.graph.tx import Graph

from tests.integration.api import scenario

P = "/api/v1/provenance"


def test_process_ancestry_and_descendants(
    client: TestClient, loaded: Graph, key: Callable[..., dict[str, str]]
) -> None:
    body = client.get(f"{P}/processes/g:pwsh", headers=key("read")).json()
    assert [p["uid"] for p in body["ancestry"]] == ["g:explorer", "g:cmd"]
    assert body["process"]["name"] == "powershell.exe"
    (child,) = body["descendants"]
    assert child["process"]["uid"] == "g:payload"
    assert [c["process"]["uid"] for c in child["children"]] == ["g:whoami"]
    assert body["truncated"] is False
    assert [w["path"] for w in body["wrote"]] == [scenario.PAYLOAD]
    assert body["connected"][0]["ip"] == "203.0.113.7"


def test_file_written_then_executed(
    client: TestClient, loaded: Graph, key: Callable[..., dict[str, str]]
) -> None:
    reader = key("read")
    body = client.get(
        f"{P}/files", params={"path": scenario.PAYLOAD, "host": "WS1.corp.example"}, headers=reader
    ).json()
    (answer,) = body["files"]
    (writer,) = answer["writers"]
    assert writer["process"]["uid"] == "g:pwsh"
    assert writer["first_time"] == "2024-05-01T10:00:20Z" and writer["ops"] == ["create"]
    assert [p["uid"] for p in writer["lineage"]] == ["g:explorer", "g:cmd", "g:pwsh"]
    assert writer["sources"] == ["sysmon:tests/scenario.ndjson:5"]
    (run,) = answer["executions"]
    assert run["process"]["uid"] == "g:payload" and run["parent"]["uid"] == "g:pwsh"
    assert run["children"] == 1
    assert answer["written_then_executed"] is True
    # Without a host: every host's file of that path.
    assert (
        len(
            client.get(f"{P}/files", params={"path": scenario.PAYLOAD}, headers=reader).json()[
                "files"
            ]
        )
        == 1
    )
    assert client.get(f"{P}/files", params={"path": "C:\\nope"}, headers=reader).status_code == 404


def test_host_timeline_in_order_and_paged(
    client: TestClient, loaded: Graph, key: Callable[..., dict[str, str]]
) -> None:
    reader = key("read")
    everything = client.get(
        f"{P}/hosts/ws1/timeline", params={"limit": 1000}, headers=reader
    ).json()
    events = everything["events"]
    times = [e["time"] for e in events]
    assert times == sorted(times) and everything["next_cursor"] is None
    kinds = [e["kind"] for e in events]
    assert {"process_start", "file_write", "network_connect", "dns_query"} <= set(kinds)
    write = next(e for e in events if e["kind"] == "file_write")
    assert write["process"]["uid"] == "g:pwsh" and write["target"] == scenario.PAYLOAD

    paged, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{P}/hosts/ws1/timeline", params=params, headers=reader).json()
        paged += page["events"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == events

    window = client.get(
        f"{P}/hosts/ws1/timeline",
        headers=reader,
        params={"since": "2024-05-01T10:00:10Z", "until": "2024-05-01T10:00:21Z"},
    ).json()
    assert [e["kind"] for e in window["events"]] == ["dns_query", "network_connect", "file_write"]
    first = client.get(f"{P}/hosts/ws1/timeline", params={"limit": 1}, headers=reader).json()
    other = client.get(
        f"{P}/hosts/ws2/timeline", params={"cursor": first["next_cursor"]}, headers=reader
    )
    assert other.status_code == 400 and "another host" in other.json()["detail"]


def test_contacts_by_ip_and_name(
    client: TestClient, loaded: Graph, key: Callable[..., dict[str, str]]
) -> None:
    reader = key("read")
    by_ip = client.get(f"{P}/contacts", params={"ip": "203.0.113.7"}, headers=reader).json()
    (conn,) = by_ip["connections"]
    assert {c["process"]["uid"] for c in conn["contacts"]} == {"g:pwsh", "g:payload"}
    by_name = client.get(f"{P}/contacts", params={"hostname": "C2.example."}, headers=reader).json()
    (domain,) = by_name["domains"]
    assert domain["answers"] == ["203.0.113.7"]
    assert [r["process"]["uid"] for r in domain["resolvers"]] == ["g:pwsh"]
    assert {c["process"]["uid"] for c in by_name["connections"][0]["contacts"]} == {
        "g:pwsh",
        "g:payload",
    }
    assert client.get(f"{P}/contacts", headers=reader).status_code == 400


def test_account_activity_by_name_and_sid(
    client: TestClient, graph: Graph, key: Callable[..., dict[str, str]]
) -> None:
    from pathlib import Path

    from provgraph.graph.pipeline import ingest_sources

    data = Path(__file__).resolve().parents[2] / "data"
    ingest_sources(graph, data / "otrf_empire_msbuild_dcerpc_wmi_smb.mordor.ndjson")
    reader = key("read")
    by_name = client.get(f"{P}/accounts/THESHIRE%5Cpgustavo", headers=reader)
    assert by_name.status_code == 200, by_name.text
    sid = "S-1-5-21-4228717743-1032521047-1810997296-1104"
    by_sid = client.get(f"{P}/accounts/{sid}", headers=reader).json()
    assert by_name.json()["accounts"] == by_sid["accounts"]
    [account] = by_sid["accounts"]
    assert account["account"]["sid"] == sid.lower()
    hosts = {h["host"] for h in account["hosts"]}
    assert "workstation6" in hosts
    missing = client.get(f"{P}/accounts/THESHIRE%5Cnobody", headers=reader)
    assert missing.status_code == 404
    assert client.get(f"{P}/accounts/{sid}").status_code == 401


def test_host_timeline_rows_with_no_process(
    client: TestClient, graph: Graph, key: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    """A logon and a failed logon (Defender rows) are timeline rows whose process is null."""
    from provgraph.graph.pipeline import ingest_sources

    from tests.unit.ingest.test_remote_logons import LOGON_ROW

    failed = {**LOGON_ROW, "Timestamp": "2024-05-01T07:50:00Z", "ActionType": "LogonFailed",
              "LogonId": None, "FailureReason": "AccountLocked"}  # fmt: skip
    path = tmp_path / "logons.ndjson"
    path.write_text(json.dumps(LOGON_ROW) + "\n" + json.dumps(failed) + "\n")
    ingest_sources(graph, path)
    reader = key("read")
    body = client.get(f"{P}/hosts/ws7/timeline", headers=reader).json()
    assert [(e["kind"], e["process"], e["target"]) for e in body["events"]] == [
        ("failed_logon", None, "corp\\alice"),
        ("logon", None, "corp\\alice"),
    ]
    assert body["events"][0]["details"]["failure_reasons"] == ["AccountLocked"]
    page = client.get(f"{P}/hosts/ws7/timeline", params={"limit": 1}, headers=reader).json()
    rest = client.get(
        f"{P}/hosts/ws7/timeline", params={"cursor": page["next_cursor"]}, headers=reader
    ).json()
    assert page["events"] + rest["events"] == body["events"] and rest["next_cursor"] is None

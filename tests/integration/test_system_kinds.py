"""What a process does to the system (issue 14, k1): image and driver loads, process access
and injection, registry, pipes, WMI subscriptions, raw reads, tampering, file events besides
writes, on the real Neo4j; on real recordings where one exists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from provgraph.graph.tx import Graph
from provgraph.graph.writer import write_events
from provgraph.ingest.reader import iter_events

DATA = Path(__file__).resolve().parents[1] / "data"
EMPIRE = DATA / "otrf_empire_msbuild_dcerpc_wmi_smb.mordor.ndjson"


def _distinct(event_id: int, *fields: str) -> int:
    """Distinct (process, target, time) of one Sysmon event id in the Empire set: a timed
    edge counts distinct times (two records of one millisecond are one)."""
    seen = set()
    for line in EMPIRE.read_text().splitlines():
        record = json.loads(line)
        if record.get("SourceName") == "Microsoft-Windows-Sysmon" and record["EventID"] == event_id:
            seen.add(tuple(str(record.get(f, "")).lower() for f in fields))
    return len(seen)


def _one(graph: Graph, query: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    rows = graph.read(query, params or {})
    assert len(rows) == 1, rows
    return rows[0]


def test_empire_image_loads_keep_the_module_and_its_pe_facts(graph: Graph) -> None:
    write_events(graph, iter_events(EMPIRE))
    # Sysmon 7: svchost loads mswsock.dll; the File carries the module's facts and hashes
    row = _one(
        graph,
        "MATCH (p:Process {uid: $uid})-[r:LOADED]->(f:File {key: $file}) "
        "RETURN p.name AS name, r.count AS n, r.sources AS sources, r.raw IS NOT NULL AS raw, "
        "f.original_name AS original, f.sha256 AS sha256, f.imphash AS imphash, "
        "f.signed AS signed, f.signer AS signer, f.signature_status AS status",
        {
            "uid": "g:d273d0f0-e873-5f64-4100-000000000800",
            "file": r"workstation6|c:\windows\system32\mswsock.dll",
        },
    )
    assert row["name"] == "svchost.exe" and row["n"] >= 1 and row["raw"]
    assert row["sources"][0].startswith("sysmon:") and row["sources"][0].endswith(
        f"{EMPIRE.name}:" + row["sources"][0].rsplit(":", 1)[1]
    )
    assert row["original"] == "mswsock.dll" and row["signed"] is True
    assert row["sha256"] == "20008aab6285fb2b24de1e72d11654316ff601918fd05b7df2f9894c64a16956"
    assert row["imphash"] == "e5e26c86bc73f56d7edd17d98802aa21"
    assert (row["signer"], row["status"]) == ("Microsoft Windows", "Valid")
    total = _one(graph, "MATCH ()-[r:LOADED]->() RETURN sum(r.count) AS n")["n"]
    # every Sysmon 7 record of the set (477, of 462 distinct times), none lost to folding
    assert total == _distinct(7, "ProcessGuid", "ImageLoaded", "UtcTime")


def test_empire_process_access_links_two_processes(graph: Graph) -> None:
    write_events(graph, iter_events(EMPIRE))
    row = _one(
        graph,
        "MATCH (s:Process {uid: $s})-[r:ACCESSED]->(t:Process {uid: $t}) "
        "RETURN s.image AS source, t.image AS target, r.granted_access AS access, "
        "r.call_trace AS trace, r.count AS n",
        {
            "s": "g:b34bc01c-7fae-5f63-1000-000000000400",
            "t": "g:b34bc01c-803f-5f63-5402-000000000400",
        },
    )
    assert row["source"] == r"C:\windows\system32\svchost.exe"
    assert row["target"] == r"C:\windows\System32\svchost.exe"
    assert "0x1000" in row["access"]
    assert any(t.startswith(r"C:\windows\SYSTEM32\ntdll.dll+9c534|") for t in row["trace"])
    assert _one(graph, "MATCH ()-[r:ACCESSED]->() RETURN sum(r.count) AS n")["n"] == _distinct(
        10, "SourceProcessGUID", "TargetProcessGUID", "UtcTime"
    )


def test_empire_registry_pipes_and_raw_reads(graph: Graph) -> None:
    write_events(graph, iter_events(EMPIRE))
    # Sysmon 13 (NXLog lost EventType: the id says "set"), value data kept
    row = _one(
        graph,
        "MATCH (p:Process)-[r:WROTE_REGISTRY]->(k:RegistryKey {key: $key}) "
        "RETURN p.uid AS uid, k.path AS path, k.name AS name, r.ops AS ops, "
        "r.details AS details, r.event_types AS types",
        {
            "key": "workstation5|hklm\\software\\microsoft\\windows\\currentversion"
            "\\vfuprovider\\starttime"
        },
    )
    assert row["uid"] == "g:b34bc01c-7fb5-5f63-4300-000000000400"
    assert row["name"] == "StartTime" and row["ops"] == ["set_value"] and row["types"] == []
    assert "QWORD (0x01d68f96-0x73873e84)" in row["details"]
    counts = _one(
        graph,
        "MATCH ()-[r:WROTE_REGISTRY]->() WHERE r.event_types = [] "  # Sysmon's, via NXLog
        "UNWIND r.ops AS op WITH op, sum(r.count) AS n "
        "RETURN collect([op, n]) AS ops",
    )
    ops = dict(counts["ops"])
    assert ops["create_or_delete"] == _distinct(12, "ProcessGuid", "TargetObject", "UtcTime")
    assert ops["set_value"] == _distinct(13, "ProcessGuid", "TargetObject", "UtcTime")
    # Sysmon 17/18: the server end and a client of a pipe
    created = _one(
        graph,
        "MATCH (p:Process)-[:CREATED_PIPE]->(x:Pipe {key: $key}) "
        "RETURN p.uid AS uid, x.name AS name",
        {"key": r"workstation6|\winsock2\catalogchangelistener-bf0-0"},
    )
    assert created == {
        "uid": "g:d273d0f0-e873-5f64-4100-000000000800",
        "name": r"\Winsock2\CatalogChangeListener-bf0-0",
    }
    client = _one(
        graph,
        "MATCH (p:Process {uid: $uid})-[r:CONNECTED_PIPE]->(x:Pipe {key: $key}) "
        "RETURN p.name AS name, r.count AS n",
        {"uid": "g:d273d0f0-cc0b-5f67-0808-000000000800", "key": r"workstation6|\wkssvc"},
    )
    assert client["name"] == "wmiprvse.exe" and client["n"] >= 1
    pipes = _one(
        graph,
        "MATCH ()-[r:CREATED_PIPE|CONNECTED_PIPE]->(:Pipe) RETURN sum(r.count) AS n",
    )
    assert pipes["n"] == _distinct(17, "ProcessGuid", "PipeName", "UtcTime") + _distinct(
        18, "ProcessGuid", "PipeName", "UtcTime"
    )
    # Sysmon 9: the volume read around the file system
    raw = _one(
        graph,
        "MATCH (p:Process {uid: $uid})-[r:READ_RAW]->(f:File) RETURN f.path AS device",
        {"uid": "g:b34bc01c-7fb1-5f63-2c00-000000000400"},
    )
    assert raw["device"] == r"\Device\HarddiskVolume2"

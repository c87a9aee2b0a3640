"""Connections keep their direction; image files carry their PE facts, so a hash is a pivot."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from provgraph.graph.loader import write_events
from provgraph.graph.tx import Graph
from provgraph.ingest.model import Event, ImageFacts, Kind, Origin, ProcessRef
from provgraph.ingest.windows import parse_windows
from provgraph.queries.engine import evaluate
from provgraph.queries.rule import load_rules

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
EMPIRE = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "otrf_empire_msbuild_dcerpc_wmi_smb.mordor.ndjson"
)
RULES = {rule.id: rule for rule in load_rules().rules}


def _origin(line: int) -> Origin:
    return Origin("test", "v2.ndjson", line)


def _connect(line: int, direction: str, ip: str, port: int, local_port: int) -> Event:
    return Event(
        Kind.NETWORK_CONNECT,
        T0 + timedelta(seconds=line),
        "srv1",
        ProcessRef(uid="g:iis", pid=4, image=r"C:\Windows\System32\inetsrv\w3wp.exe"),
        _origin(line),
        remote_ip=ip,
        remote_port=port,
        local_port=local_port,
        protocol="tcp",
        direction=direction,
    )


def test_inbound_connections_are_accepted_from_the_peer_without_port_nodes(graph: Graph) -> None:
    write_events(
        graph,
        [
            # three clients' ephemeral ports to the local 443, and one to 80
            _connect(1, "inbound", "198.51.100.4", 50123, 443),
            _connect(2, "inbound", "198.51.100.4", 50999, 443),
            _connect(3, "inbound", "198.51.100.4", 51000, 80),
            _connect(4, "inbound", "203.0.113.8", 61234, 443),
            _connect(5, "outbound", "192.0.2.10", 1433, 60001),  # and it reaches a database
        ],
    )
    accepted = graph.read(
        "MATCH (:Process {uid: 'g:iis'})-[r:ACCEPTED]->(c:Connection) "
        "RETURN c.key AS peer, c.port AS port, r.local_ports AS local_ports, r.count AS n "
        "ORDER BY peer"
    )
    assert accepted == [
        {"peer": "198.51.100.4||tcp", "port": None, "local_ports": [443, 80], "n": 3},
        {"peer": "203.0.113.8||tcp", "port": None, "local_ports": [443], "n": 1},
    ]
    connected = graph.read(
        "MATCH (:Process {uid: 'g:iis'})-[r:CONNECTED_TO]->(c:Connection) "
        "RETURN c.key AS key, r.local_port AS local_port"
    )
    assert connected == [{"key": "192.0.2.10|1433|tcp", "local_port": 60001}]
    # no endpoint named by a client's ephemeral port
    assert graph.read("MATCH (c:Connection) WHERE c.port >= 50000 RETURN count(c) AS n") == [
        {"n": 0}
    ]


def _start(uid: str, host: str, image: str, facts: ImageFacts, line: int) -> Event:
    ref = ProcessRef(uid=uid, pid=line, image=image, start_time=T0, image_facts=facts)
    return Event(Kind.PROCESS_START, T0 + timedelta(seconds=line), host, ref, _origin(line))


SHA = "fc060ced6b0c7d0aada14ccde223d3eb7dd31c9861b3fd34816c948483702b38"


def test_one_hash_finds_every_process_started_from_that_binary(graph: Graph) -> None:
    msbuild = ImageFacts(
        original_file_name="MSBuild.exe", company="Microsoft Corporation", sha256=SHA
    )
    other = ImageFacts(original_file_name="cmd.exe", sha256="ab" * 32)
    write_events(
        graph,
        [
            _start("g:a", "ws1", r"C:\Windows\Microsoft.NET\MSBuild.exe", msbuild, 1),
            _start("g:b", "ws2", r"C:\Users\Public\b.exe", msbuild, 2),  # renamed, other host
            _start("g:c", "ws2", r"C:\Windows\System32\cmd.exe", other, 3),
        ],
    )
    query = (
        "MATCH (f:File {sha256: $sha})<-[e:EXECUTED]-(p:Process) "
        "RETURN p.uid AS uid, f.host AS host, f.original_name AS original, "
        "f.company AS company ORDER BY uid"
    )
    company = "Microsoft Corporation"
    assert graph.read(query, {"sha": SHA}) == [
        {"uid": "g:a", "host": "ws1", "original": "msbuild.exe", "company": company},
        {"uid": "g:b", "host": "ws2", "original": "msbuild.exe", "company": company},
    ]
    # the lookup is an index seek, not a scan of every file
    plan = graph.read_tx(lambda tx: tx.run("EXPLAIN " + query, {"sha": SHA}).consume().plan)
    assert "NodeIndexSeek" in json.dumps(plan)


def test_a_binary_replaced_at_its_path_shows_the_newer_facts(graph: Graph) -> None:
    path = r"C:\Tools\agent.exe"
    old = ImageFacts(file_version="1.0", sha256="11" * 32)
    new = ImageFacts(file_version="2.0", sha256="22" * 32)
    # the newer start first, the older one in a later run: the newer facts stay
    write_events(graph, [_start("g:new", "ws1", path, new, 50)])
    write_events(graph, [_start("g:old", "ws1", path, old, 5)])
    rows = graph.read(
        "MATCH (f:File {name: 'agent.exe'}) "
        "RETURN f.file_version AS version, f.sha256 AS sha256, f.facts_time AS seen, "
        "COUNT { (f)<-[:EXECUTED]-() } AS started"
    )
    assert rows == [
        {"version": "2.0", "sha256": "22" * 32, "seen": T0 + timedelta(seconds=50), "started": 2}
    ]


def _empire(predicate: Any) -> tuple[int, dict[str, Any]]:
    with EMPIRE.open() as lines:
        return next((n, r) for n, r in enumerate(map(json.loads, lines), 1) if predicate(r))


def test_a_renamed_msbuild_started_by_cmd_is_caught_by_its_original_name(graph: Graph) -> None:
    """The Empire set's real Sysmon 1 for cmd.exe -> MSBuild, with MSBuild copied elsewhere
    under another name: its OriginalFileName still says MSBuild.exe."""
    line, record = _empire(
        lambda r: r.get("EventID") == 1 and r.get("Image", "").endswith("MSBuild.exe")
    )
    renamed = {
        **record,
        "Image": r"C:\Users\Public\Libraries\svc.exe",
        "CommandLine": r"C:\Users\Public\Libraries\svc.exe C:\Windows\Tasks\pshell.xml",
    }
    events = parse_windows(renamed, Origin("windows", str(EMPIRE), line))
    write_events(graph, events)
    (match,) = evaluate(graph, RULES["msbuild_script_parent"])
    assert match.row["parent_name"] == "cmd.exe"
    assert match.row["msbuild_uid"] == "g:d273d0f0-cc0c-5f67-0b08-000000000800"
    # and without PE facts (a source that logs none), the renamed copy is not MSBuild
    graph.write("MATCH (f:File) REMOVE f.original_name")
    assert evaluate(graph, RULES["msbuild_script_parent"]) == []

"""Defender and Elastic logons in the graph (accounts, part 2): generated rows in the shapes
the sources write (Defender's documented columns, flat and in the Event Hub envelope; Elastic
Defend's authentication and process events), asserted on the real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from provgraph.graph.pipeline import ingest_sources
from provgraph.graph.tx import Graph
from provgraph.queries.accounts import account_activity

from tests.records import LOGON_ROW, SID, defender_process_row

ALICE = SID.lower()
SESSION = "ws7|0x390178"


def _one(graph: Graph, query: str, **params: Any) -> dict[str, Any]:
    rows = graph.read(query, params)
    assert len(rows) == 1, rows
    return dict(rows[0])


def _failed(ts: str, reason: str, ip: str) -> dict[str, Any]:
    return {**LOGON_ROW, "Timestamp": ts, "ActionType": "LogonFailed", "LogonType": "Network",
            "LogonId": None, "FailureReason": reason, "RemoteIP": ip}  # fmt: skip


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_defender_logon_session_account_and_processes(graph: Graph, tmp_path: Path) -> None:
    rows = [
        defender_process_row(),  # the process first: the session is named before it is described
        LOGON_ROW,
        _failed("2024-05-01T07:50:00Z", "InvalidUserNameOrPassword", "10.20.0.9"),
        _failed("2024-05-01T07:51:00Z", "AccountLocked", "10.20.0.9"),
        {**LOGON_ROW, "ActionType": "LogonAttempted"},
    ]
    ingest_sources(graph, _write(tmp_path / "mde.ndjson", rows), batch_size=2)
    row = _one(
        graph,
        "MATCH (a:Account)-[lo:LOGGED_ON]->(l:Logon {key: $key})-[:ON_HOST]->(h:Host) "
        "RETURN a.key AS account, a.names AS names, properties(l) AS l, h.name AS host, "
        "lo.source AS source",
        key=SESSION,
    )
    assert row["account"] == ALICE and row["names"] == ["corp\\alice"] and row["host"] == "ws7"
    logon = row["l"]
    assert logon["logon_type"] == 10 and logon["source_ip"] == "10.20.0.7"
    assert logon["workstation"] == "jump01" and logon["auth_package"] == "Negotiate"
    assert logon["elevated"] is True and logon["start_time"] is not None
    assert row["source"] == f"mde:{tmp_path / 'mde.ndjson'}:2"
    # both processes of the row are in the session and run as alice, by SID
    members = graph.read(
        "MATCH (p:Process)-[:IN_LOGON]->(:Logon {key: $key}) MATCH (p)-[:RAN_AS]->(a:Account) "
        "RETURN p.name AS name, a.key AS account ORDER BY name",
        {"key": SESSION},
    )
    assert [(r["name"], r["account"]) for r in members] == [
        ("cmd.exe", ALICE),
        ("explorer.exe", ALICE),
    ]
    failed = _one(
        graph,
        "MATCH (a:Account {key: $key})-[r:FAILED_LOGON]->(h:Host) RETURN properties(r) AS r",
        key=ALICE,
    )["r"]
    assert failed["count"] == 2 and failed["logon_types"] == [3]
    assert set(failed["failure_reasons"]) == {"InvalidUserNameOrPassword", "AccountLocked"}
    assert failed["source_ips"] == ["10.20.0.9"]
    assert graph.read("MATCH (a:Account) RETURN count(a) AS n", {})[0]["n"] == 1
    # the account query reads it all
    [activity] = account_activity(graph, account="CORP\\alice").accounts
    [host] = activity.hosts
    [session] = host.logons
    assert {p["name"] for p in session.processes} == {"cmd.exe", "explorer.exe"}
    [failures] = activity.failed_logons
    assert failures.count == 2 and "AccountLocked" in failures.failure_reasons


def test_defender_event_hub_logons_join_flat_process_rows(graph: Graph, tmp_path: Path) -> None:
    """A site exporting logons through Event Hub and querying processes flat: one session."""
    capture = {
        "records": [
            {
                "time": "2024-05-01T07:59:59Z",
                "tenantId": "11111111-2222-3333-4444-555555555555",
                "operationName": "Publish",
                "category": "AdvancedHunting-DeviceLogonEvents",
                "properties": LOGON_ROW,
            }
        ]
    }
    (tmp_path / "hub.json").write_text(json.dumps(capture))
    _write(tmp_path / "rows.ndjson", [defender_process_row()])
    ingest_sources(graph, tmp_path / "hub.json")
    ingest_sources(graph, tmp_path / "rows.ndjson")
    row = _one(
        graph,
        "MATCH (a:Account)-[:LOGGED_ON]->(l:Logon {key: $key})<-[:IN_LOGON]-(p:Process) "
        "WHERE p.name = 'cmd.exe' RETURN a.key AS a, l.sources AS sources",
        key=SESSION,
    )
    assert row["a"] == ALICE and row["sources"] == [f"mde:{tmp_path / 'hub.json'}:1"]


def test_defender_process_by_sid_joins_a_security_logon_by_name(
    graph: Graph, tmp_path: Path
) -> None:
    """A Defender row gives alice's SID; a name-only mention (Sysmon-style) folds onto it."""
    named = defender_process_row(
        AccountSid="",
        ProcessId=5000,
        LogonId=0,
        InitiatingProcessAccountSid="",
        InitiatingProcessLogonId=0,
        InitiatingProcessId=4999,
    )
    ingest_sources(graph, _write(tmp_path / "a.ndjson", [named]))
    ingest_sources(graph, _write(tmp_path / "b.ndjson", [defender_process_row()]))
    rows = graph.read(
        "MATCH (p:Process)-[:RAN_AS]->(a:Account) RETURN DISTINCT a.key AS key, a.aliases AS al",
        {},
    )
    assert [r["key"] for r in rows] == [ALICE]


def test_elastic_logon_joins_the_processes_of_its_session(graph: Graph, tmp_path: Path) -> None:
    from tests.unit.ingest.test_remote_logons import ECS_LOGON

    process = {
        "@timestamp": "2024-05-01T08:00:00Z",
        "event": {"category": ["process"], "type": ["start"]},
        "host": {"name": "ws7", "os": {"type": "windows"}},
        "user": {"id": SID, "name": "alice", "domain": "CORP"},
        "process": {
            "entity_id": "Y21kLTQzMTI=",
            "pid": 4312,
            "executable": "C:\\Windows\\System32\\cmd.exe",
            "Ext": {"authentication_id": "0x390178"},
        },
    }
    failed = {
        **ECS_LOGON,
        "@timestamp": "2024-05-01T07:40:00Z",
        "event": {**ECS_LOGON["event"], "outcome": "failure", "reason": "bad password"},
        "process": {"pid": 744, "Ext": {"session_info": {"logon_type": "Network"}}},
    }
    logoff = {
        **ECS_LOGON,
        "@timestamp": "2024-05-01T09:00:00Z",
        "event": {**ECS_LOGON["event"], "type": ["end"], "action": "log_off"},
    }
    ingest_sources(graph, _write(tmp_path / "ecs.ndjson", [process, ECS_LOGON, failed, logoff]))
    row = _one(
        graph,
        "MATCH (a:Account)-[:LOGGED_ON]->(l:Logon {key: $key})<-[:IN_LOGON]-(p:Process) "
        "MATCH (p)-[:RAN_AS]->(a) "
        "RETURN a.key AS a, p.uid AS uid, l.logon_type AS type, l.source_ip AS ip, "
        "l.start_time < l.end_time AS ended",
        key=SESSION,
    )
    assert row == {"a": ALICE, "uid": "e:Y21kLTQzMTI=", "type": 10, "ip": "10.20.0.7",
                   "ended": True}  # fmt: skip
    failures = _one(
        graph,
        "MATCH (:Account {key: $key})-[r:FAILED_LOGON]->(:Host {name: 'ws7'}) "
        "RETURN r.failure_reasons AS reasons, r.logon_types AS types, r.count AS n",
        key=ALICE,
    )
    assert failures == {"reasons": ["bad password"], "types": [3], "n": 1}

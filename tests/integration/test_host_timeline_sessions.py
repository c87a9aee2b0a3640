"""The host timeline holds what no process did (accounts, part 2): logons, logoffs, failed
logons, share access, service installs and task changes, with a null process, keyed and
paged like the process rows. Real records (OTRF's Empire set) and generated Defender rows,
on the real server."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from provgraph.graph.pipeline import ingest_sources
from provgraph.graph.tx import Graph
from provgraph.queries.provenance import host_timeline

ROOT = Path(__file__).resolve().parents[2]
EMPIRE = ROOT / "tests" / "data" / "otrf_empire_msbuild_dcerpc_wmi_smb.mordor.ndjson"
PGUSTAVO = "s-1-5-21-4228717743-1032521047-1810997296-1104"
SESSION = "workstation6|0x2f1c4dc"  # pgustavo's network logon that ran the MSBuild chain


@pytest.fixture(scope="module")
def empire(graph_session: Graph) -> Graph:
    graph_session.write_autocommit("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS")
    ingest_sources(graph_session, EMPIRE, batch_size=500)
    return graph_session


def test_empire_timeline_holds_the_sessions_and_share_access(empire: Graph) -> None:
    events = host_timeline(empire, host="workstation6", limit=10_000).events
    kinds = Counter(e.kind for e in events if e.process is None)
    assert kinds["logon"] >= 1 and kinds["logoff"] >= 1 and kinds["share_access"] >= 1
    # a processless row is one of these kinds only; process rows still have their process
    assert set(kinds) <= {"logon", "logoff", "failed_logon", "share_access", "service_install",
                          "task_change"}  # fmt: skip
    assert all(e.process is not None for e in events if e.kind.startswith(("process", "file")))
    [session] = [e for e in events if e.kind == "logon" and e.details["logon"] == SESSION]
    assert session.target == "THESHIRE\\pgustavo" and session.details["account"] == PGUSTAVO
    assert session.details["logon_type"] == 3 and session.details["source_ip"] == "172.18.39.5"
    shares = [e for e in events if e.kind == "share_access" and e.target == "\\\\*\\C$"]
    assert shares and all(e.details["who"] == "THESHIRE\\pgustavo" for e in shares)
    assert "Windows\\Tasks\\pshell.xml" in {
        t for e in shares for t in e.details["relative_targets"]
    }


def test_timeline_pages_through_processless_rows(empire: Graph) -> None:
    whole = host_timeline(empire, host="workstation6", limit=10_000).events
    paged, cursor = [], None
    while True:
        page = host_timeline(empire, host="workstation6", limit=7, cursor=cursor)
        paged += page.events
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [(e.time, e.kind, e.target) for e in paged] == [
        (e.time, e.kind, e.target) for e in whole
    ]
    assert any(e.process is None for e in paged)


def test_script_blocks_on_the_timeline(empire: Graph) -> None:
    """RAN_SCRIPT and USED_CREDENTIALS are timed edges of the model like the rest: their rows
    come with their process (the timeline's facts are generated from graph.model)."""
    from tests.integration.test_accounts_and_system import MSBUILD

    events = host_timeline(empire, host="workstation6", limit=10_000).events
    scripts = [e for e in events if e.kind == "script_block"]
    assert scripts and all(e.process is not None for e in scripts)
    [block] = [
        e for e in scripts if e.details["script_block_id"] == "5e93c054-c579-458b-adca-eddfdc0f99e1"
    ]
    assert block.process is not None and block.process["uid"] == MSBUILD
    assert block.details["complete"] is True and block.details["parts_total"] == 1


def test_timeline_failed_logons_services_and_tasks(graph: Graph, tmp_path: Path) -> None:
    from provgraph.graph.loader import write_events

    from tests.integration.test_accounts_and_system import (
        TASK_DISABLED,
        _events,
        _evtx_json,
        _win,
    )

    install = _win(
        4697,
        {"SubjectUserSid": "S-1-5-21-1111-2222-3333-1001", "SubjectUserName": "alice",
         "SubjectDomainName": "CORP", "SubjectLogonId": "0x1a2b", "ServiceName": "PSEXESVC",
         "ServiceFileName": "%SystemRoot%\\PSEXESVC.exe", "ServiceType": "0x10",
         "ServiceStartType": "3", "ServiceAccount": "LocalSystem"},
        host="swachchhanda",
    )  # fmt: skip
    failed = {
        "TargetUserSid": "S-1-0-0", "TargetUserName": "bob", "TargetDomainName": "CORP",
        "LogonType": "3", "Status": "0xc000006d", "SubStatus": "0xc000006a",
        "IpAddress": "203.0.113.9", "IpPort": "50000",
    }  # fmt: skip
    records = [install, _win(4625, failed, host="swachchhanda")]
    write_events(graph, _events(records) + _events(_evtx_json(TASK_DISABLED), "4701.json"))
    events = host_timeline(graph, host="swachchhanda", limit=1000).events
    by_kind = {e.kind: e for e in events}
    service = by_kind["service_install"]
    assert service.process is None and service.target == "PSEXESVC"
    assert service.details["image_path"] == "%SystemRoot%\\PSEXESVC.exe"
    assert service.details["logon"] == "swachchhanda|0x1a2b"
    assert service.details["who"] == "CORP\\alice"
    bad = by_kind["failed_logon"]
    assert bad.process is None and bad.target == "CORP\\bob"
    assert bad.details["statuses"] == ["0xc000006d"] and bad.details["source_ips"] == [
        "203.0.113.9"
    ]
    # 4701 names both the session and the client process: one row, the process's
    tasks = [e for e in events if e.kind == "task_change"]
    assert len(tasks) == 1 and tasks[0].process is not None
    assert tasks[0].process["uid"] == "p:swachchhanda:5204"
    assert tasks[0].target == "\\Microsoft\\Windows\\SystemRestore\\SR"
    assert tasks[0].details["ops"] == ["disabled"]


def test_defender_logons_on_the_timeline(graph: Graph, tmp_path: Path) -> None:
    from tests.unit.ingest.test_remote_logons import LOGON_ROW

    failed = {**LOGON_ROW, "Timestamp": "2024-05-01T07:50:00Z", "ActionType": "LogonFailed",
              "LogonId": None, "FailureReason": "InvalidUserNameOrPassword"}  # fmt: skip
    path = tmp_path / "logons.ndjson"
    path.write_text(json.dumps(LOGON_ROW) + "\n" + json.dumps(failed) + "\n")
    ingest_sources(graph, path)
    events = host_timeline(graph, host="ws7").events
    assert [(e.kind, e.process, e.target) for e in events] == [
        ("failed_logon", None, "corp\\alice"),
        ("logon", None, "corp\\alice"),
    ]
    assert events[0].details["failure_reasons"] == ["InvalidUserNameOrPassword"]
    assert events[1].details["logon_type"] == 10 and events[1].details["elevated"] is True


def test_explicit_credentials_on_the_timeline(graph: Graph) -> None:
    from provgraph.graph.loader import write_events

    from tests.integration.test_accounts_and_system import EXPLICIT, _events, _evtx_json

    write_events(graph, _events(_evtx_json(EXPLICIT), "4648.json"))
    [host] = [r["h"] for r in graph.read("MATCH (p:Process) RETURN DISTINCT p.host AS h")]
    events = host_timeline(graph, host=host, limit=1000).events
    [used] = [e for e in events if e.kind == "explicit_credentials"]
    assert used.process is not None and used.process["image"].endswith("LegacyHive.exe")
    assert used.details["account"] == "swachchhanda\\testuser"
    assert used.target is not None and used.target.lower() == "swachchhanda\\testuser"
    assert used.details["target_servers"] == ["localhost"]

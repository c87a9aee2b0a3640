"""Accounts, logons and Windows system changes in the graph (graph v2, part 2): real records
from OTRF's Empire MSBuild set and SigmaHQ's regression data where they exist, generated
records (in the shape Windows writes them) otherwise. Every assertion reads the real server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from provgraph.graph.loader import write_events
from provgraph.graph.pipeline import ingest_sources
from provgraph.graph.tx import Graph
from provgraph.ingest.model import Event, Origin
from provgraph.ingest.windows import parse_windows
from provgraph.queries.accounts import account_activity
from provgraph.queries.errors import AccountNotFound

ROOT = Path(__file__).resolve().parents[2]
EMPIRE = ROOT / "tests" / "data" / "otrf_empire_msbuild_dcerpc_wmi_smb.mordor.ndjson"
SIGMA = Path("/work/shared/sigmahq/regression_data/rules/windows/builtin")
EXPLICIT = SIGMA / "security/win_security_explicit_credential_local_logon"
TASK_DISABLED = SIGMA / "security/win_security_susp_scheduled_task_delete_or_disable"
PGUSTAVO = "s-1-5-21-4228717743-1032521047-1810997296-1104"
SESSION = "workstation6|0x2f1c4dc"  # pgustavo's network logon that ran the MSBuild chain
MSBUILD = "g:d273d0f0-cc0c-5f67-0b08-000000000800"


def _one(graph: Graph, query: str, **params: Any) -> dict[str, Any]:
    rows = graph.read(query, params)
    assert len(rows) == 1, rows
    return dict(rows[0])


def _evtx_json(folder: Path) -> list[dict[str, Any]]:
    """The pretty-printed evtx-rs objects of a SigmaHQ regression .json file."""
    [path] = folder.glob("*.json")
    text, decoder, at, out = path.read_text(), json.JSONDecoder(), 0, []
    while at < len(text):
        while at < len(text) and text[at].isspace():
            at += 1
        if at < len(text):
            record, at = decoder.raw_decode(text, at)
            out.append(record)
    return out


def _events(records: list[dict[str, Any]], path: str = "generated") -> list[Event]:
    events: list[Event] = []
    for line, record in enumerate(records, 1):
        events += parse_windows(record, Origin("windows", path, line))
    return events


@pytest.fixture(scope="module")
def empire(graph_session: Graph) -> Graph:
    graph_session.write_autocommit("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS")
    ingest_sources(graph_session, EMPIRE, batch_size=500)
    return graph_session


# -- real records: OTRF Empire MSBuild (Mordor) ------------------------------------------------
def test_empire_logon_session_joins_account_host_and_processes(empire: Graph) -> None:
    row = _one(
        empire,
        "MATCH (a:Account)-[lo:LOGGED_ON]->(l:Logon {key: $key})-[:ON_HOST]->(h:Host) "
        "RETURN a.key AS account, a.names AS names, properties(l) AS logon, h.name AS host, "
        "lo.source AS source",
        key=SESSION,
    )
    assert row["account"] == PGUSTAVO and "theshire\\pgustavo" in row["names"]
    logon = row["logon"]
    assert logon["logon_type"] == 3 and logon["auth_package"] == "Kerberos"
    assert logon["source_ip"] == "172.18.39.5" and logon["elevated"] is True  # 4672
    assert "SeDebugPrivilege" in logon["privileges"]
    assert any(s.startswith("security:") for s in logon["sources"])
    assert row["host"] == "workstation6"
    in_session = {
        r["name"]
        for r in empire.read(
            "MATCH (p:Process)-[:IN_LOGON]->(:Logon {key: $key}) RETURN p.name AS name",
            {"key": SESSION},
        )
    }
    assert {"cmd.exe", "msbuild.exe", "csc.exe", "powershell.exe"} <= in_session
    # one MSBuild node (Sysmon 1 + 4688) runs as the one pgustavo account
    ran_as = empire.read(
        "MATCH (:Process {uid: $uid})-[:RAN_AS]->(a:Account) RETURN a.key AS key",
        {"uid": MSBUILD},
    )
    assert [r["key"] for r in ran_as] == [PGUSTAVO]


def test_empire_system_sessions_are_the_well_known_accounts(empire: Graph) -> None:
    """4688 names a NETWORK SERVICE process's target user "THESHIRE\\WORKSTATION6$": the
    fixed session 0x3e4 says NETWORK SERVICE, as Sysmon's User does, so one account."""
    rows = empire.read(
        "MATCH (p:Process {name: 'wmiprvse.exe', host: 'workstation6'})-[:RAN_AS]->(a:Account) "
        "RETURN DISTINCT a.key AS key",
        {},
    )
    assert {r["key"] for r in rows} <= {"s-1-5-18", "s-1-5-19", "s-1-5-20"}
    assert not empire.read("MATCH (a:Account) WHERE a.key ENDS WITH '$' RETURN a.key", {})


def test_empire_share_access_from_the_logon(empire: Graph) -> None:
    row = _one(
        empire,
        "MATCH (l:Logon)-[r:ACCESSED_SHARE]->(s:Share {key: 'workstation6|\\\\\\\\*\\\\c$'}) "
        "RETURN l.key AS logon, properties(r) AS r, s.share_path AS path",
    )
    r = row["r"]
    assert row["logon"] == "workstation6|0x2f1f582" and row["path"] == "\\??\\C:\\"
    assert "Windows\\Tasks\\pshell.xml" in r["relative_targets"]
    assert {"0x80", "0x2"} <= set(r["access_masks"]) and r["source_ips"] == ["172.18.39.5"]
    assert r["count"] == len(r["times"]) >= 2 and r["sources"][0].startswith("security:")
    who = _one(
        empire,
        "MATCH (a:Account)-[:LOGGED_ON]->(:Logon {key: 'workstation6|0x2f1f582'}) "
        "RETURN a.key AS key",
    )
    assert who["key"] == PGUSTAVO


def test_empire_5156_keeps_direction_and_joins_the_process(empire: Graph) -> None:
    inbound = empire.read(
        "MATCH (p:Process {host: 'mordordc', name: 'lsass.exe'})-[r:ACCEPTED]->(c:Connection) "
        "RETURN c.port AS port, r.local_ports AS ports",
        {},
    )
    # the peer is keyed without its ephemeral port; lsass listens on LDAP and Kerberos
    assert inbound and all(r["port"] is None for r in inbound)
    assert {389, 88} == {port for r in inbound for port in r["ports"]}
    out = _one(
        empire,
        "MATCH (p:Process {uid: 'g:d273d0f0-cc10-5f67-1008-000000000800'})"
        "-[r:CONNECTED_TO]->(c:Connection {key: '10.10.10.5|80|tcp'}) RETURN r.sources AS s",
    )
    # Sysmon 3 and the 5156 of the same connection are on the one powershell node
    assert {s.split(":")[0] for s in out["s"]} == {"sysmon", "security"}


def test_empire_script_blocks_join_their_host_process(empire: Graph) -> None:
    row = _one(
        empire,
        "MATCH (p:Process)-[r:RAN_SCRIPT]->(s:ScriptBlock "
        "{key: 'workstation6|5e93c054-c579-458b-adca-eddfdc0f99e1'}) "
        "RETURN p.uid AS uid, properties(s) AS s, r.sources AS sources",
    )
    # Empire's MSBuild runs PowerShell in-process: 4104's Execution ProcessID is MSBuild's
    assert row["uid"] == MSBUILD
    assert row["s"]["complete"] is True and row["s"]["parts_total"] == 1
    assert row["s"]["text"].startswith("powershell -noP -sta -w 1 -enc")
    assert row["sources"][0].startswith("powershell:")


def test_account_query_by_name_or_sid(empire: Graph) -> None:
    by_name = account_activity(empire, account="theshire\\PGUSTAVO")
    by_sid = account_activity(empire, account=PGUSTAVO.upper())
    by_dns_domain = account_activity(empire, account="THESHIRE.LOCAL\\pgustavo")
    assert by_name.accounts == by_sid.accounts == by_dns_domain.accounts
    [activity] = by_name.accounts
    assert activity.account["key"] == PGUSTAVO
    [ws6] = [h for h in activity.hosts if h.host == "workstation6"]
    [session] = [s for s in ws6.logons if s.logon["key"] == SESSION]
    assert MSBUILD in {p["uid"] for p in session.processes}
    shares = [a for h in activity.hosts for s in h.logons for a in s.actions]
    assert any(a["kind"] == "ACCESSED_SHARE" and a["target"] == "\\\\*\\C$" for a in shares)
    with pytest.raises(AccountNotFound):
        account_activity(empire, account="THESHIRE\\nobody")


# -- real records: SigmaHQ regression data -----------------------------------------------------
def test_4648_explicit_credentials_from_the_process(graph: Graph) -> None:
    write_events(graph, _events(_evtx_json(EXPLICIT), "4648.json"))
    row = _one(
        graph,
        "MATCH (p:Process)-[r:USED_CREDENTIALS]->(a:Account) "
        "RETURN p.pid AS pid, p.image AS image, a.key AS account, properties(r) AS r",
    )
    assert row["pid"] == 0x378 and row["image"].endswith("LegacyHive.exe")
    assert row["account"] == "swachchhanda\\testuser"
    assert row["r"]["target_servers"] == ["localhost"] and row["r"]["count"] == 1
    subject = _one(
        graph,
        "MATCH (a:Account)-[:LOGGED_ON]->(l:Logon) RETURN a.key AS a, l.key AS l",
    )
    assert subject == {"a": "s-1-5-21-2555720767-1205513275-3893774561-1001",
                       "l": "swachchhanda|0x85527"}  # fmt: skip
    ran_as = _one(graph, "MATCH (:Process)-[:RAN_AS]->(a:Account) RETURN a.key AS a")
    assert ran_as["a"] == subject["a"]


def test_4701_task_disabled_by_the_session_and_the_client_process(graph: Graph) -> None:
    write_events(graph, _events(_evtx_json(TASK_DISABLED), "4701.json"))
    task = _one(
        graph,
        "MATCH (t:ScheduledTask) RETURN t.key AS key, t.content AS content",
    )
    assert task["key"] == "swachchhanda|\\microsoft\\windows\\systemrestore\\sr"
    assert task["content"].startswith("<?xml") and "srtasks.exe" in task["content"]
    actors = graph.read(
        "MATCH (x)-[r:CHANGED_TASK]->(:ScheduledTask) "
        "RETURN labels(x)[0] AS label, coalesce(x.key, x.uid) AS key, r.ops AS ops "
        "ORDER BY label",
        {},
    )
    assert [(a["label"], a["ops"]) for a in actors] == [
        ("Logon", ["disabled"]),
        ("Process", ["disabled"]),
    ]
    assert actors[1]["key"] == "p:swachchhanda:5204"


# -- generated records (Windows' shape, evtx-rs rendering) -------------------------------------
T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def _win(
    event_id: int,
    data: dict[str, Any],
    *,
    at: timedelta = timedelta(),
    provider: str = "Microsoft-Windows-Security-Auditing",
    pid: int = 700,
    user: str | None = None,
    host: str = "ws1.corp.example",
) -> dict[str, Any]:
    system: dict[str, Any] = {
        "Provider": {"#attributes": {"Name": provider}},
        "EventID": event_id,
        "TimeCreated": {"#attributes": {"SystemTime": (T0 + at).isoformat()}},
        "Execution": {"#attributes": {"ProcessID": pid, "ThreadID": 1}},
        "Computer": host,
        "Security": {"#attributes": {"UserID": user}} if user else None,
    }
    return {"Event": {"System": system, "EventData": data}}


ALICE_SID = "S-1-5-21-1111-2222-3333-1001"


def test_4625_failed_logons_are_one_timed_edge(graph: Graph) -> None:
    failed = {
        "TargetUserSid": "S-1-0-0",
        "TargetUserName": "alice",
        "TargetDomainName": "CORP",
        "LogonType": "3",
        "Status": "0xc000006d",
        "SubStatus": "0xC000006A",
        "IpAddress": "203.0.113.9",
        "IpPort": "50000",
        "WorkstationName": "ATTACKER",
    }
    records = [_win(4625, failed, at=timedelta(seconds=s)) for s in (0, 1, 1, 5)]
    write_events(graph, _events(records))
    row = _one(
        graph,
        "MATCH (a:Account)-[r:FAILED_LOGON]->(h:Host) "
        "RETURN a.key AS a, h.name AS h, properties(r) AS r",
    )
    assert row["a"] == "corp\\alice" and row["h"] == "ws1"
    r = row["r"]
    assert r["count"] == 3 and len(r["times"]) == 3  # distinct times
    assert r["statuses"] == ["0xc000006d"] and r["sub_statuses"] == ["0xc000006a"]
    assert r["logon_types"] == [3] and r["source_ips"] == ["203.0.113.9"]
    assert not graph.read("MATCH (l:Logon) RETURN l", {})  # a failure opens no session


def _logon(at: int, sid: str | None = ALICE_SID, logon_id: str = "0x1a2b") -> dict[str, Any]:
    data = {
        "SubjectUserSid": "S-1-5-18",
        "TargetUserName": "alice",
        "TargetDomainName": "CORP.EXAMPLE",
        "TargetLogonId": logon_id,
        "LogonType": "10",
        "IpAddress": "198.51.100.7",
        "ElevatedToken": "%%1843",
        "AuthenticationPackageName": "Negotiate",
    }
    if sid:
        data["TargetUserSid"] = sid
    return _win(4624, data, at=timedelta(seconds=at))


def _sysmon_start(at: int, guid: str, logon_id: str = "0x1a2b") -> dict[str, Any]:
    data = {
        "UtcTime": (T0 + timedelta(seconds=at)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
        "ProcessGuid": guid,
        "ProcessId": 4242,
        "Image": "C:\\Windows\\System32\\cmd.exe",
        "CommandLine": "cmd.exe /c whoami",
        "User": "CORP\\alice",
        "LogonId": logon_id,
        "ParentProcessGuid": "{00000000-0000-0000-0000-00000000aaaa}",
        "ParentProcessId": 100,
        "ParentImage": "C:\\Windows\\explorer.exe",
    }
    return _win(1, data, at=timedelta(seconds=at), provider="Microsoft-Windows-Sysmon")


@pytest.mark.parametrize("order", ["name first", "sid first", "name, then both"])
@pytest.mark.parametrize("batches", [1, 3])
def test_an_account_known_by_name_gains_its_sid(graph: Graph, order: str, batches: int) -> None:
    """Sysmon names alice by DOMAIN\\name only, 4624 by SID too: one Account, keyed by SID,
    whichever comes first, in one batch or several."""
    start = _sysmon_start(5, "{11111111-0000-0000-0000-000000000001}")
    logon = _logon(0)
    logoff = _win(4634, {"TargetUserSid": ALICE_SID, "TargetUserName": "alice",
                         "TargetDomainName": "CORP", "TargetLogonId": "0x1a2b",
                         "LogonType": "10"}, at=timedelta(seconds=60))  # fmt: skip
    records = {
        "name first": [start, logon, logoff],
        "sid first": [logon, logoff, start],
        "name, then both": [start, logoff, logon],
    }[order]
    events = _events(records)
    write_events(graph, events, batch_size=max(1, len(events) // batches))
    accounts = graph.read("MATCH (a:Account) RETURN a.key AS key, a.names AS names", {})
    assert accounts == [{"key": ALICE_SID.lower(), "names": ["corp\\alice"]}]
    row = _one(
        graph,
        "MATCH (a:Account)-[:LOGGED_ON]->(l:Logon)<-[:IN_LOGON]-(p:Process), "
        "(p)-[:RAN_AS]->(a) RETURN properties(l) AS l, p.name AS name",
    )
    assert row["name"] == "cmd.exe"
    assert row["l"]["logon_type"] == 10 and row["l"]["elevated"] is False
    assert row["l"]["start_time"].to_native() == T0
    assert row["l"]["end_time"].to_native() == T0 + timedelta(seconds=60)


def test_two_account_nodes_written_apart_become_one(graph: Graph) -> None:
    """A name node (Sysmon) and a SID node without a name (7045 installer), written by two
    runs, meet when a record names both: the name node's edges move to the SID node."""
    write_events(graph, _events([_sysmon_start(5, "{11111111-0000-0000-0000-000000000002}")]))
    service = _win(
        7045,
        {"ServiceName": "Updater", "ImagePath": '"C:\\Users\\alice\\upd.exe" -k',
         "ServiceType": "user mode service", "StartType": "auto start",
         "AccountName": "LocalSystem"},
        provider="Service Control Manager", user=ALICE_SID, at=timedelta(seconds=9),
    )  # fmt: skip
    write_events(graph, _events([service]))
    assert len(graph.read("MATCH (a:Account) RETURN a", {})) == 2
    write_events(graph, _events([_logon(0)]))
    [account] = graph.read("MATCH (a:Account) RETURN properties(a) AS a", {})
    assert account["a"]["key"] == ALICE_SID.lower()
    assert "corp\\alice" in account["a"]["names"] and "aliases" not in account["a"]
    edges = graph.read(
        "MATCH (a:Account)-[r]-(x) RETURN type(r) AS t, labels(x)[0] AS x ORDER BY t", {}
    )
    assert [(e["t"], e["x"]) for e in edges] == [
        ("INSTALLED_SERVICE", "Service"),
        ("LOGGED_ON", "Logon"),
        ("RAN_AS", "Process"),
    ]
    svc = _one(
        graph,
        "MATCH (s:Service)-[:RUNS]->(f:File) RETURN properties(s) AS s, f.path AS path",
    )
    assert svc["path"] == "C:\\Users\\alice\\upd.exe"
    assert svc["s"]["start_type"] == "auto start" and svc["s"]["service_account"] == "LocalSystem"


def test_4697_service_install_from_the_logon(graph: Graph) -> None:
    record = _win(
        4697,
        {"SubjectUserSid": ALICE_SID, "SubjectUserName": "alice", "SubjectDomainName": "CORP",
         "SubjectLogonId": "0x1a2b", "ServiceName": "PSEXESVC",
         "ServiceFileName": "%SystemRoot%\\PSEXESVC.exe", "ServiceType": "0x10",
         "ServiceStartType": "3", "ServiceAccount": "LocalSystem"},
    )  # fmt: skip
    write_events(graph, _events([record]))
    row = _one(
        graph,
        "MATCH (a:Account)-[:LOGGED_ON]->(l:Logon)-[r:INSTALLED_SERVICE]->(s:Service)"
        "-[:RUNS]->(f:File) RETURN a.key AS a, s.key AS s, r.image_paths AS paths, f.path AS f",
    )
    assert row == {
        "a": ALICE_SID.lower(),
        "s": "ws1|psexesvc",
        "paths": ["%SystemRoot%\\PSEXESVC.exe"],
        "f": "%SystemRoot%\\PSEXESVC.exe",
    }


def test_task_content_is_the_newest_and_ops_accumulate(graph: Graph) -> None:
    subject = {
        "SubjectUserSid": ALICE_SID,
        "SubjectUserName": "alice",
        "SubjectDomainName": "CORP",
        "SubjectLogonId": "0x1a2b",
        "TaskName": "\\Evil",
    }
    created = _win(4698, {**subject, "TaskContent": "<Task>v1</Task>"})
    updated = _win(4702, {**subject, "TaskContentNew": "<Task>v2</Task>"}, at=timedelta(seconds=1))
    deleted = _win(4699, {**subject, "TaskContent": "<Task>v2</Task>"}, at=timedelta(seconds=2))
    write_events(graph, _events([updated]))  # out of order, across batches
    write_events(graph, _events([deleted, created]))
    row = _one(
        graph,
        "MATCH (:Logon)-[r:CHANGED_TASK]->(t:ScheduledTask) "
        "RETURN t.content AS c, properties(r) AS r",
    )
    assert row["c"] == "<Task>v2</Task>" and row["r"]["count"] == 3
    assert sorted(row["r"]["ops"]) == ["created", "deleted", "updated"]


def _part(number: int, total: int, text: str, at: int) -> dict[str, Any]:
    return _win(
        4104,
        {"MessageNumber": number, "MessageTotal": total, "ScriptBlockText": text,
         "ScriptBlockId": "{AAAA0000-1111-2222-3333-444455556666}", "Path": "C:\\x.ps1"},
        provider="Microsoft-Windows-PowerShell", pid=4242, user=ALICE_SID,
        at=timedelta(seconds=at),
    )  # fmt: skip


def test_multi_part_script_block_reassembled_in_any_order_and_batch(graph: Graph) -> None:
    start = _sysmon_start(0, "{11111111-0000-0000-0000-000000000003}")
    write_events(graph, _events([start, _part(3, 3, "C", 3)]))
    partial = _one(graph, "MATCH (s:ScriptBlock) RETURN properties(s) AS s")["s"]
    assert partial["complete"] is False and partial["text"] == "C" and partial["parts_seen"] == 1
    write_events(graph, _events([_part(1, 3, "A", 1), _part(3, 3, "C", 3)]))
    write_events(graph, _events([_part(2, 3, "B", 2)]))
    row = _one(
        graph,
        "MATCH (p:Process)-[r:RAN_SCRIPT]->(s:ScriptBlock) "
        "RETURN p.uid AS uid, properties(s) AS s, properties(r) AS r",
    )
    assert row["s"]["text"] == "ABC" and row["s"]["complete"] is True
    assert row["s"]["key"] == "ws1|aaaa0000-1111-2222-3333-444455556666"
    assert row["uid"] == "g:11111111-0000-0000-0000-000000000003"  # host + pid + time
    assert row["r"]["count"] == 3

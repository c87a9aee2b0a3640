"""Sigma rules of the Windows event log logsources the v2 graph models, on the real server:
`ps_script` (PowerShell 4104 script blocks), `system` 7045 and `security` 4697 (service
installs), `security` 4698-4702 (scheduled task changes), `security` 4624, 4625 and 4648
(logons, failed logons, explicit credentials). Records are generated in the shape Windows
writes them (evtx-rs rendering) and go through the real parser; the SigmaHQ recordings of a
4701 and a 4648 are run by the regression suite (test_sigmahq_suite.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from provgraph.graph.loader import write_events
from provgraph.graph.tx import Graph
from provgraph.ingest.model import Event, Origin
from provgraph.ingest.windows import parse_windows
from provgraph.queries.engine import evaluate
from provgraph.queries.sigma import compile_path
from provgraph.queries.sigma.stream import stream_plan
from sigma_common import WIPE_ALL

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
ALICE_SID = "S-1-5-21-1111-2222-3333-1001"
SUBJECT = {
    "SubjectUserSid": ALICE_SID,
    "SubjectUserName": "alice",
    "SubjectDomainName": "CORP",
    "SubjectLogonId": "0x1a2b",
}


def _win(
    event_id: int,
    data: dict[str, Any],
    at: float,
    provider: str = "Microsoft-Windows-Security-Auditing",
    pid: int = 700,
    user: str | None = None,
) -> dict[str, Any]:
    system: dict[str, Any] = {
        "Provider": {"#attributes": {"Name": provider}},
        "EventID": event_id,
        "TimeCreated": {"#attributes": {"SystemTime": (T0 + timedelta(seconds=at)).isoformat()}},
        "Execution": {"#attributes": {"ProcessID": pid, "ThreadID": 1}},
        "Computer": "ws1.corp.example",
        "Security": {"#attributes": {"UserID": user}} if user else None,
    }
    return {"Event": {"System": system, "EventData": data}}


def _script(block: str, text: str, at: float, path: str | None = None) -> dict[str, Any]:
    data = {"MessageNumber": 1, "MessageTotal": 1, "ScriptBlockText": text, "ScriptBlockId": block}
    if path:
        data["Path"] = path
    return _win(4104, data, at, provider="Microsoft-Windows-PowerShell", pid=4242, user=ALICE_SID)


def _logon(logon_id: str, logon_type: int, at: float, **data: Any) -> dict[str, Any]:
    """A 4624 as Windows writes it: '-' where it has nothing to say."""
    base = {
        "SubjectUserSid": "S-1-5-18",
        "SubjectUserName": "WS1$",
        "SubjectDomainName": "CORP",
        "SubjectLogonId": "0x3e7",
        "TargetUserSid": ALICE_SID,
        "TargetUserName": "alice",
        "TargetDomainName": "CORP",
        "TargetLogonId": logon_id,
        "LogonType": str(logon_type),
        "LogonProcessName": "User32 ",
        "AuthenticationPackageName": "Negotiate",
        "WorkstationName": "WS1",
        "LogonGuid": "{00000000-0000-0000-0000-000000000000}",
        "TransmittedServices": "-",
        "LmPackageName": "-",
        "KeyLength": "0",
        "ProcessId": "0x2c4",
        "ProcessName": "C:\\Windows\\System32\\svchost.exe",
        "IpAddress": "-",
        "IpPort": "-",
        "ImpersonationLevel": "%%1833",
        "TargetOutboundUserName": "-",
        "TargetOutboundDomainName": "-",
    }
    return _win(4624, {**base, **data}, at, pid=640)


BOB_SID = "S-1-5-21-1111-2222-3333-1002"
LOGONS = [
    # RDP from the machine itself
    _logon("0x7001", 10, 8, IpAddress="127.0.0.1", IpPort="51000"),
    # NTLM network logon with a NULL session subject and no key: pass-the-hash's shape
    _logon(
        "0x7002", 3, 9, TargetUserSid=BOB_SID, TargetUserName="bob", SubjectUserSid="S-1-0-0",
        LogonProcessName="NtLmSsp ", AuthenticationPackageName="NTLM", WorkstationName="KALI",
        IpAddress="10.1.2.3", IpPort="50100", ProcessId="0x0", ProcessName="-",
    ),
    # runas /netonly: NewCredentials with an outbound user
    _logon(
        "0x7003", 9, 10, LogonProcessName="seclogo", IpAddress="::1", IpPort="0",
        TargetOutboundUserName="thisisnotvaliduser", TargetOutboundDomainName="CORP",
    ),
    # an anonymous NTLM logon, nothing known of the peer
    _logon(
        "0x7004", 3, 11, TargetUserSid="S-1-5-7", TargetUserName="ANONYMOUS LOGON",
        TargetDomainName="NT AUTHORITY", SubjectUserSid="S-1-0-0", LogonProcessName="NtLmSsp ",
        AuthenticationPackageName="NTLM", WorkstationName="-", ProcessName="-",
    ),
    _win(
        4625,
        {
            "SubjectUserSid": "S-1-0-0", "SubjectUserName": "-", "SubjectDomainName": "-",
            "SubjectLogonId": "0x0", "TargetUserSid": "S-1-0-0", "TargetUserName": "mallory",
            "TargetDomainName": "CORP", "Status": "0xC000006D", "FailureReason": "%%2313",
            "SubStatus": "0xC000006A", "LogonType": "3", "LogonProcessName": "NtLmSsp ",
            "AuthenticationPackageName": "NTLM", "WorkstationName": "KALI",
            "IpAddress": "203.0.113.9", "IpPort": "0", "ProcessId": "0x0", "ProcessName": "-",
        },
        12,
    ),
    *(
        _win(
            4648,
            {
                **SUBJECT, "LogonGuid": "{00000000-0000-0000-0000-000000000000}",
                "TargetUserName": target, "TargetDomainName": "CORP",
                "TargetLogonGuid": "{00000000-0000-0000-0000-000000000000}",
                "TargetServerName": "localhost", "TargetInfo": "localhost",
                "ProcessId": hex(pid), "ProcessName": f"C:\\Users\\alice\\{image}",
                "IpAddress": "-", "IpPort": "-",
            },
            at,
        )
        for target, pid, image, at in (
            ("admin", 0x1F4, "runas.exe", 13), ("alice", 0x1F8, "x.exe", 14)
        )
    ),
]  # fmt: skip

RECORDS = [
    _script("{AAAA0000-1111-2222-3333-000000000001}", "IEX (Invoke-Mimikatz -DumpCreds)", 1),
    _script("{AAAA0000-1111-2222-3333-000000000002}", "Get-ChildItem C:\\", 2, "C:\\ok.ps1"),
    _win(
        7045,
        {
            "ServiceName": "Updater",
            "ImagePath": '"C:\\Users\\alice\\upd.exe" -k',
            "ServiceType": "user mode service",
            "StartType": "auto start",
            "AccountName": "LocalSystem",
        },
        3,
        provider="Service Control Manager",
        user=ALICE_SID,
    ),  # fmt: skip
    _win(
        4697,
        {
            **SUBJECT,
            "ServiceName": "PSEXESVC",
            "ServiceFileName": "%SystemRoot%\\PSEXESVC.exe",
            "ServiceType": "0x10",
            "ServiceStartType": "3",
            "ServiceAccount": "LocalSystem",
        },
        4,
    ),  # fmt: skip
    _win(4698, {**SUBJECT, "TaskName": "\\Evil", "TaskContent": "<Task>calc.exe</Task>"}, 5),
    _win(4701, {**SUBJECT, "TaskName": "\\Microsoft\\Windows\\Windows Defender\\Scan"}, 6),
    _win(4699, {**SUBJECT, "TaskName": "\\Evil", "TaskContent": "<Task>calc.exe</Task>"}, 7),
    *LOGONS,
]


def _rule(n: int, logsource: dict[str, str], detection: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": f"windows log rule {n}",
        "id": f"00000000-0000-4000-a000-{n:012d}",
        "status": "test",
        "level": "high",
        "logsource": {"product": "windows", **logsource},
        "detection": detection,
    }


PS = {"category": "ps_script"}
SYSTEM, SECURITY = {"service": "system"}, {"service": "security"}
# rule -> (logsource, detection, column, the values of it the rule must match)
CASES: dict[int, tuple[dict[str, str], dict[str, Any], str, set[Any]]] = {
    1: (
        PS,
        {"sel": {"ScriptBlockText|contains": "invoke-mimikatz"}, "condition": "sel"},
        "script_key",
        {"ws1|aaaa0000-1111-2222-3333-000000000001"},
    ),
    2: (  # no Path on the first block: `not` of a missing field holds
        PS,
        {
            "sel": {"ScriptBlockText|contains": "-"},
            "f": {"Path|endswith": "ok.ps1"},
            "condition": "sel and not f",
        },
        "script_key",
        {"ws1|aaaa0000-1111-2222-3333-000000000001"},
    ),  # fmt: skip
    3: (
        SYSTEM,
        {
            "sel": {
                "Provider_Name": "Service Control Manager",
                "EventID": 7045,
                "ImagePath|contains": "\\Users\\",
                "StartType": "auto start",
            },
            "condition": "sel",
        },
        "service_key",
        {"ws1|updater"},
    ),  # fmt: skip
    4: (
        SECURITY,
        {
            "sel": {
                "EventID": 4697,
                "ServiceFileName|endswith": "\\PSEXESVC.exe",
                "SubjectUserName": "ALICE",
            },
            "condition": "sel",
        },
        "service_key",
        {"ws1|psexesvc"},
    ),  # fmt: skip
    5: (  # SigmaHQ's win_security_susp_scheduled_task_delete_or_disable, trimmed
        SECURITY,
        {
            "sel": {"EventID": [4699, 4701], "TaskName|contains": ["\\Windows Defender\\", "Evil"]},
            "condition": "sel",
        },
        "task_op",
        {"deleted", "disabled"},
    ),  # fmt: skip
    6: (
        SECURITY,
        {"sel": {"EventID": 4698, "TaskContent|contains": "calc.exe"}, "condition": "sel"},
        "task_op",
        {"created"},
    ),
    7: (  # SigmaHQ's win_security_rdp_localhost_login
        SECURITY,
        {
            "sel": {"EventID": 4624, "LogonType": 10, "IpAddress": ["::1", "127.0.0.1"]},
            "condition": "sel",
        },
        "logon_key",
        {"ws1|0x7001"},
    ),  # fmt: skip
    8: (  # SigmaHQ's win_security_pass_the_hash_2: trailing blanks, SIDs, a number, a filter
        SECURITY,
        {
            "selection_logon3": {
                "EventID": 4624,
                "SubjectUserSid": "S-1-0-0",
                "LogonType": 3,
                "LogonProcessName": "NtLmSsp",
                "KeyLength": 0,
            },
            "selection_logon9": {"EventID": 4624, "LogonType": 9, "LogonProcessName": "seclogo"},
            "filter": {"TargetUserName": "ANONYMOUS LOGON"},
            "condition": "1 of selection_* and not filter",
        },
        "logon_key",
        {"ws1|0x7002", "ws1|0x7003"},
    ),  # fmt: skip
    9: (  # Windows' "-": a filter on it keeps its meaning (the logons with no address drop)
        SECURITY,
        {
            "sel": {"EventID": 4624, "ProcessName|endswith": "\\svchost.exe"},
            "f_ip": {"IpAddress": "-"},
            "f_ws": {"WorkstationName": "-"},
            "condition": "sel and not 1 of f_*",
        },
        "logon_key",
        {"ws1|0x7001", "ws1|0x7003"},
    ),  # fmt: skip
    10: (  # SigmaHQ's DiagTrackEoP rule, on the outbound user
        SECURITY,
        {
            "sel": {
                "EventID": 4624,
                "LogonType": 9,
                "TargetOutboundUserName": "thisisnotvaliduser",
            },
            "condition": "sel",
        },
        "account_key",
        {ALICE_SID.lower()},
    ),  # fmt: skip
    11: (  # a failed logon from a public address (cidr, status as logged upper-case)
        SECURITY,
        {
            "sel": {"EventID": 4625, "Status": "0xC000006D", "TargetUserName": "Mallory"},
            "f": {"IpAddress|cidr": ["10.0.0.0/8", "192.168.0.0/16"]},
            "condition": "sel and not f",
        },
        "account",
        {"CORP\\mallory"},
    ),  # fmt: skip
    12: (  # SigmaHQ's win_security_explicit_credential_local_logon, trimmed
        SECURITY,
        {
            "selection_eid": {"EventID": 4648},
            "selection_localhost": [{"TargetServerName": "localhost"}, {"TargetInfo": "localhost"}],
            "filter_main_same_user": {"SubjectUserName|fieldref": "TargetUserName"},
            "filter_main_system": {"ProcessName|startswith": "C:\\Windows\\System32\\"},
            "condition": "all of selection_* and not 1 of filter_main_*",
        },
        "image",
        {"C:\\Users\\alice\\runas.exe"},
    ),  # fmt: skip
}


@pytest.fixture
def rules(tmp_path: Path) -> Any:
    folder = tmp_path / "rules"
    folder.mkdir()
    docs = [_rule(n, ls, det) for n, (ls, det, _, _) in CASES.items()]
    (folder / "rules.yml").write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    report = compile_path([folder])
    assert len(report.compiled) == len(CASES), report.format()
    return {r.name.rsplit(" ", 1)[-1]: r for r in report.rules}


def _events() -> list[Event]:
    out: list[Event] = []
    for line, record in enumerate(RECORDS, 1):
        out += parse_windows(record, Origin("windows", "generated", line))
    return out


def test_windows_log_rules_match_their_graph_facts(graph: Graph, rules: Any) -> None:
    graph.write_autocommit(WIPE_ALL)
    write_events(graph, _events())
    for n, (_, _, column, want) in CASES.items():
        matches = evaluate(graph, rules[str(n)])
        assert {m.row[column] for m in matches} == want, (n, [m.row for m in matches])
        assert all(m.row["host"] == "ws1" for m in matches)
    # they run as Cypher (no stream for these logsources), saying so
    plan = stream_plan(rules.values())
    assert plan.streamed == [] and all("runs as Cypher" in why for why in plan.why.values())


def test_windows_log_rules_that_do_not_map_are_reported(tmp_path: Path) -> None:
    docs = [
        _rule(11, SECURITY, {"sel": {"EventID": 4776, "Workstation": "x"}, "condition": "sel"}),
        _rule(12, SECURITY, {"sel": {"EventID": [4698, 4697]}, "condition": "sel"}),
        _rule(13, SECURITY, {"sel": {"TaskName": "x"}, "condition": "sel"}),
        _rule(14, SYSTEM, {"sel": {"EventID": 7045, "ImagePath": "x", "Foo": 1},
                           "condition": "sel"}),
    ]  # fmt: skip
    (tmp_path / "rules.yml").write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    report = compile_path([tmp_path])
    got = {r.title.rsplit(" ", 1)[-1]: (r.status, r.kind, r.details) for r in report.results}
    assert got == {
        "11": ("failed", "logsource", ("security EventID 4776",)),
        "12": ("failed", "logsource", ("security several event types",)),
        "13": ("failed", "logsource", ("service security without EventID",)),
        "14": ("failed", "field", ("Foo",)),
    }


def test_cypher_rules_of_an_empty_logsource_give_the_runs_the_engine_gives(
    graph: Graph, rules: Any
) -> None:
    """`SigmaStream.run_cypher` leaves out the rules whose logsource has no row in the window
    (here: services and tasks, none written; then a window before every event): the runs, in
    rule order, say what `engine.run_rules` says of them, and the rest still run and alert."""
    from provgraph.queries.engine import run_rules
    from provgraph.queries.sigma.stream import SigmaStream

    graph.write_autocommit(WIPE_ALL)
    scripts = [e for e in _events() if e.script is not None]
    assert scripts and len(scripts) < len(_events())
    write_events(graph, scripts)
    plan = stream_plan(rules.values())
    stream = SigmaStream(plan.streamed, plan.cypher)
    since, until = T0, T0 + timedelta(hours=1)
    for window in ((since, until), (since - timedelta(days=2), since - timedelta(days=1))):
        runs = stream.run_cypher(graph, *window)
        assert [r.rule_id for r in runs] == [r.id for r in plan.cypher]
        assert all(r.error is None for r in runs)
        engine = {r.rule_id: r.matches for r in run_rules(graph, *window, plan.cypher)}
        assert {r.rule_id: r.matches for r in runs} == engine
    fired = {r.rule_id for r in stream.run_cypher(graph, since, until) if r.matches}
    assert fired == {rules["1"].id, rules["2"].id}


WHOAMI = {
    "UtcTime": "2024-05-01 10:00:20.000",
    "ProcessGuid": "{11111111-2222-3333-4444-555555555555}",
    "ProcessId": "4321",
    "Image": "C:\\Windows\\System32\\whoami.exe",
    "CommandLine": "whoami /all",
    "User": "CORP\\alice",
    "LogonId": "0x7001",
    "ParentProcessGuid": "{11111111-2222-3333-4444-000000000000}",
    "ParentProcessId": "640",
    "ParentImage": "C:\\Windows\\explorer.exe",
    "ParentCommandLine": "explorer.exe",
}


def test_a_sigma_alert_links_the_account_it_names(graph: Graph, rules: Any, tmp_path: Path) -> None:
    """An alert's account entity is the Account node, whether the rule's row names it by its
    key (the logon rules) or as the log spelled the user (`CORP\\alice` on a process row, the
    node keyed by SID)."""
    from provgraph.queries.engine import run_rules

    graph.write_autocommit(WIPE_ALL)
    write_events(graph, _events())
    logon = rules["10"]
    (run,) = run_rules(graph, T0, T0 + timedelta(hours=1), [logon])
    assert run.error is None and run.created == 1
    linked = graph.read(
        "MATCH (a:Alert {rule_id: $rule})-[:INVOLVES {role: 'account'}]->(n:Account) "
        "RETURN n.key AS key",
        {"rule": logon.id},
    )
    assert linked == [{"key": ALICE_SID.lower()}]
    # a Sysmon start names alice as the log spells her: "CORP\\alice", the node keyed by SID
    start = _win(1, WHOAMI, 20, provider="Microsoft-Windows-Sysmon")
    write_events(graph, parse_windows(start, Origin("windows", "generated", 99)))
    folder = tmp_path / "proc"
    folder.mkdir()
    doc = _rule(99, {"category": "process_creation"}, {
        "sel": {"Image|endswith": "\\whoami.exe"}, "condition": "sel"
    })  # fmt: skip
    (folder / "r.yml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    (proc,) = compile_path([folder]).rules
    (run,) = run_rules(graph, T0, T0 + timedelta(hours=1), [proc])
    assert run.error is None and run.created == 1
    entity = graph.read(
        "MATCH (a:Alert {rule_id: $rule})-[:INVOLVES {role: 'account'}]->(n:Account) "
        "RETURN n.key AS key",
        {"rule": proc.id},
    )
    assert entity == [{"key": ALICE_SID.lower()}]

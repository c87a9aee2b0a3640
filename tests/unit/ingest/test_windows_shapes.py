"""Synthetic Sysmon and Security records in the shapes the datasets do not cover."""

from __future__ import annotations

import pytest
from provgraph.ingest.errors import ParseError, Skipped
from provgraph.ingest.model import FileOp, Kind, Origin
from provgraph.ingest.security import parse_security
from provgraph.ingest.sysmon import parse_sysmon
from provgraph.ingest.windows import parse_windows

ORIGIN = Origin("test", "<test>", 1)

SECURITY_EVENT_4688 = {
    "TimeGenerated": "2024-03-01T10:00:00.5Z",
    "Computer": "build01.corp.example",
    "EventID": 4688,
    "Type": "SecurityEvent",
    "Account": "CORP\\builder",
    "SubjectUserName": "builder",
    "SubjectDomainName": "CORP",
    "SubjectLogonId": "0x3E7AB",
    "NewProcessId": "0x1A2B",
    "NewProcessName": "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\MSBuild.exe",
    "Process": "MSBuild.exe",
    "ProcessId": "0x0F00",
    "ParentProcessName": "C:\\Windows\\System32\\cmd.exe",
    "CommandLine": "MSBuild.exe build.proj",
    "TargetUserName": "-",
    "MandatoryLabel": "S-1-16-12288",
}


def test_sentinel_securityevent_4688() -> None:
    [event] = parse_security(SECURITY_EVENT_4688, ORIGIN)
    assert event.kind is Kind.PROCESS_START
    assert event.host == "build01" and event.host_fqdn == "build01.corp.example"
    assert event.ts.isoformat() == "2024-03-01T10:00:00.500000+00:00"
    assert event.process.pid == 0x1A2B
    assert event.process.uid == "p:build01:6699:20240301T100000.500000"
    assert event.process.user == "CORP\\builder"  # Target "-" falls back to the creator
    assert event.process.integrity_level == "High"
    assert event.process.logon_id == "0x3e7ab"
    assert event.parent is not None and event.parent.uid == "p:build01:3840"


def test_security_4663_masks() -> None:
    base = {
        "TimeGenerated": "2024-03-01T10:00:02Z",
        "Computer": "build01",
        "EventID": 4663,
        "ObjectType": "File",
        "ObjectName": "C:\\src\\Program.cs",
        "ProcessId": "0xF00",
        "ProcessName": "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\MSBuild.exe",
    }
    [write] = parse_security({**base, "AccessMask": "0X6"}, ORIGIN)
    assert write.kind is Kind.FILE_WRITE and write.access_mask == "0x6"
    assert write.file_op is FileOp.MODIFY and write.process.uid == "p:build01:3840"
    [attrs] = parse_security({**base, "AccessMask": "0x100"}, ORIGIN)
    assert attrs.access_mask == "0x100"
    [delete] = parse_security({**base, "AccessMask": "0x10000"}, ORIGIN)
    assert delete.file_op is FileOp.DELETE
    read = parse_security({**base, "AccessMask": "0x1"}, ORIGIN)
    assert read == [] and isinstance(read, Skipped) and "write" in read.reason
    other = parse_security({**base, "ObjectType": "Mutant", "AccessMask": "0x2"}, ORIGIN)
    assert isinstance(other, Skipped) and "Mutant" in other.reason
    with pytest.raises(ParseError, match="AccessMask"):
        parse_security({**base, "AccessMask": "lots"}, ORIGIN)
    with pytest.raises(ParseError, match="ObjectName"):
        parse_security(
            {k: v for k, v in {**base, "AccessMask": "0x2"}.items() if k != "ObjectName"}, ORIGIN
        )


def test_sentinel_windowsevent_routes_by_provider() -> None:
    record = {
        "TimeGenerated": "2024-03-01T10:00:00Z",
        "Computer": "ws1.example",
        "EventID": 4689,
        "Provider": "Microsoft-Windows-Security-Auditing",
        "Channel": "Security",
        "EventData": {"ProcessId": "0x10", "ProcessName": "C:\\x.exe", "SubjectUserName": "u"},
        "Type": "WindowsEvent",
    }
    [end] = parse_windows(record, ORIGIN)
    assert end.kind is Kind.PROCESS_END and end.origin.source == "security"
    assert end.process.uid == "p:ws1:16"
    other = parse_windows({**record, "Provider": "Microsoft-Windows-PowerShell"}, ORIGIN)
    assert isinstance(other, Skipped)


def test_security_time_without_zone_is_rejected() -> None:
    with pytest.raises(ParseError, match="TimeGenerated"):
        parse_security({**SECURITY_EVENT_4688, "TimeGenerated": "2024-03-01 10:00:00"}, ORIGIN)


def test_winlogbeat_sysmon_network_and_dns() -> None:
    record = {
        "@timestamp": "2024-03-01T10:00:05.000Z",
        "host": {"name": "ws2.corp.example"},
        "winlog": {
            "provider_name": "Microsoft-Windows-Sysmon",
            "event_id": "3",
            "computer_name": "WS2.corp.example",
            "event_data": {
                "UtcTime": "2024-03-01 10:00:04.123",
                "ProcessGuid": "{AAAAAAAA-1111-2222-3333-444444444444}",
                "ProcessId": "4242",
                "Image": "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\MSBuild.exe",
                "Protocol": "TCP",
                "Initiated": "true",
                "SourceIp": "192.0.2.10",
                "SourcePort": "50000",
                "DestinationIp": "203.0.113.7",
                "DestinationHostname": "payload.example",
                "DestinationPort": "443",
            },
        },
    }
    [conn] = parse_sysmon(record, ORIGIN)
    assert conn.kind is Kind.NETWORK_CONNECT and conn.host == "ws2"
    assert conn.process.uid == "g:aaaaaaaa-1111-2222-3333-444444444444"
    assert (conn.remote_ip, conn.remote_port, conn.protocol) == ("203.0.113.7", 443, "tcp")
    assert conn.remote_hostname == "payload.example" and conn.local_port == 50000
    assert conn.ts.isoformat() == "2024-03-01T10:00:04.123000+00:00"
    dns = dict(
        record["winlog"],
        event_id=22,
        event_data={
            "UtcTime": "2024-03-01 10:00:03.000",
            "ProcessGuid": "{AAAAAAAA-1111-2222-3333-444444444444}",
            "QueryName": "payload.example",
            "QueryResults": "type:  5 cdn.example;::ffff:198.51.100.9;",
            "Image": "C:\\x.exe",
        },
    )
    [query] = parse_sysmon({**record, "winlog": dns}, ORIGIN)
    assert query.kind is Kind.DNS_QUERY and query.query_name == "payload.example"
    assert query.query_results == ("type:  5 cdn.example", "198.51.100.9")


def test_sysmon_inbound_connection_takes_the_source_as_remote() -> None:
    record = {
        "Event": {
            "System": {
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
                "EventID": 3,
                "Computer": "srv.example",
                "TimeCreated": {"#attributes": {"SystemTime": "2024-03-01T10:00:00Z"}},
            },
            "EventData": {
                "ProcessGuid": "B-1",
                "Initiated": False,
                "Protocol": "tcp",
                "SourceIp": "198.51.100.20",
                "SourcePort": 51000,
                "DestinationIp": "192.0.2.5",
                "DestinationPort": 445,
            },
        }
    }
    [conn] = parse_sysmon(record, ORIGIN)
    assert conn.direction == "inbound" and conn.remote_ip == "198.51.100.20"
    assert conn.local_port == 445


def test_sysmon_missing_and_mistyped_fields_name_the_field() -> None:
    record = {
        "Event": {
            "System": {
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
                "EventID": 1,
                "Computer": "ws.example",
            },
            "EventData": {"UtcTime": "2024-03-01 10:00:00.000", "ProcessGuid": "X-1"},
        }
    }
    with pytest.raises(ParseError, match="Image: missing"):
        parse_sysmon(record, ORIGIN)
    record["Event"]["EventData"]["Image"] = ["not", "text"]
    with pytest.raises(ParseError, match="Image: expected text"):
        parse_sysmon(record, ORIGIN)
    record["Event"]["EventData"].update(Image="C:\\a.exe", ProcessId="0xZZ")
    with pytest.raises(ParseError, match="ProcessId"):
        parse_sysmon(record, ORIGIN)


@pytest.mark.parametrize(
    ("operation", "op"),
    [
        ("%%1904", "set_value"),  # a new value: Sysmon logs it as 13 SetValue, not a key add
        ("New registry value created", "set_value"),
        ("%%1905", "set_value"),
        ("%%1906", "delete"),
        ("Registry value deleted", "delete"),
    ],
)
def test_security_4657_value_ops(operation: str, op: str) -> None:
    record = {
        "TimeGenerated": "2024-03-01T10:00:03Z",
        "Computer": "build01",
        "EventID": 4657,
        "ObjectName": "\\REGISTRY\\MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run",
        "ObjectValueName": "Updater",
        "OperationType": operation,
        "NewValue": "C:\\Users\\Public\\tool.exe",
        "ProcessId": "0xF00",
        "ProcessName": "C:\\Windows\\System32\\reg.exe",
    }
    [event] = parse_security(record, ORIGIN)
    assert event.kind is Kind.REGISTRY and event.registry is not None
    assert event.registry.op == op
    assert event.registry.path == "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\Updater"

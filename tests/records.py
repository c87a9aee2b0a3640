"""Record builders more than one test folder uses: rows in the shapes the sources write, so a
parser unit test and the graph test of the same source start from one definition."""

from __future__ import annotations

from typing import Any

SID = "S-1-5-21-1004336348-1177238915-682003330-1105"
DEVICE = "0f5e1c1d2b7a4c3e9d8f7a6b5c4d3e2f1a0b9c8d"

LOGON_ROW: dict[str, Any] = {
    "Timestamp": "2024-05-01T07:59:58.0000000Z",
    "DeviceId": DEVICE,
    "DeviceName": "ws7.corp.example",
    "ActionType": "LogonSuccess",
    "LogonType": "RemoteInteractive",
    "AccountDomain": "corp",
    "AccountName": "alice",
    "AccountSid": SID,
    "Protocol": "Negotiate",
    "FailureReason": "",
    "IsLocalAdmin": True,
    "LogonId": 3735928,
    "RemoteDeviceName": "jump01",
    "RemoteIP": "10.20.0.7",
    "RemoteIPType": "Private",
    "RemotePort": 50522,
    "InitiatingProcessAccountDomain": "nt authority",
    "InitiatingProcessAccountName": "system",
    "InitiatingProcessAccountSid": "S-1-5-18",
    "InitiatingProcessFileName": "svchost.exe",
    "InitiatingProcessFolderPath": "c:\\windows\\system32\\svchost.exe",
    "InitiatingProcessId": 1144,
    "InitiatingProcessCreationTime": "2024-04-30T06:00:00.0000000Z",
    "ReportId": 77,
}


def defender_process_row(**over: Any) -> dict[str, Any]:
    """A Defender DeviceProcessEvents row of alice's cmd.exe under explorer.exe; `over` replaces
    columns, and a column given as None is left out."""
    row = {
        "Timestamp": "2024-05-01T08:00:00.1234567Z",
        "DeviceId": DEVICE,
        "DeviceName": "ws7.corp.example",
        "ActionType": "ProcessCreated",
        "FileName": "cmd.exe",
        "FolderPath": "C:\\Windows\\System32\\cmd.exe",
        "ProcessId": 4312,
        "ProcessCreationTime": "2024-05-01T08:00:00.1200000Z",
        "AccountDomain": "corp",
        "AccountName": "alice",
        "AccountSid": SID,
        "LogonId": 3735928,
        "InitiatingProcessFileName": "explorer.exe",
        "InitiatingProcessFolderPath": "C:\\Windows\\explorer.exe",
        "InitiatingProcessId": 2200,
        "InitiatingProcessCreationTime": "2024-05-01T07:59:59.0000000Z",
        "InitiatingProcessAccountDomain": "corp",
        "InitiatingProcessAccountName": "alice",
        "InitiatingProcessAccountSid": SID,
        "InitiatingProcessLogonId": 3735928,
    }
    row.update(over)
    return {k: v for k, v in row.items() if v is not None}

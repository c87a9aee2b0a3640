"""Sysmon-shaped records (evtx-rs JSON, as SigmaHQ's regression data and `provgraph ingest`
read them), built from a few facts, so integration tests ingest through the real parser."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

BASE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_NAMESPACE = uuid.UUID("6f1c0000-0000-4000-8000-00000000feed")


def guid(name: str) -> str:
    """A stable upper-case process GUID for a short name (Sysmon writes them upper-case)."""
    return str(uuid.uuid5(_NAMESPACE, name)).upper()


def _record(
    event_id: int, t: float, host: str, data: dict[str, Any], number: int
) -> dict[str, Any]:
    when = BASE + timedelta(seconds=t)
    return {
        "Event": {
            "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
            "System": {
                "Provider": {
                    "#attributes": {
                        "Name": "Microsoft-Windows-Sysmon",
                        "Guid": "5770385F-C22A-43E0-BF4C-06F5698FFBD9",
                    }
                },
                "EventID": event_id,
                "TimeCreated": {
                    "#attributes": {"SystemTime": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
                },
                "EventRecordID": number,
                "Channel": "Microsoft-Windows-Sysmon/Operational",
                "Computer": host,
            },
            "EventData": {"UtcTime": when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3], **data},
        }
    }


class Recorder:
    """Records in order; each call returns the record (and keeps it in `records`)."""

    def __init__(self, host: str = "ws1") -> None:
        self.host = host
        self.records: list[dict[str, Any]] = []
        self._pids: dict[str, int] = {}

    def _pid(self, name: str) -> int:
        return self._pids.setdefault(name, 1000 + 4 * len(self._pids))

    def start(
        self,
        t: float,
        name: str,
        image: str,
        command_line: str,
        parent: str | None = None,
        parent_image: str = "C:\\Windows\\explorer.exe",
        user: str = "CORP\\alice",
        host: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Sysmon 1: `name` started from `parent` (a short name given to an earlier start);
        `extra` adds EventData fields (PE facts: `OriginalFileName`, `Hashes`, …)."""
        parent_name = parent or f"parent-of-{name}"
        data = {
            "ProcessGuid": guid(name),
            "ProcessId": self._pid(name),
            "Image": image,
            "CommandLine": command_line,
            "User": user,
            "LogonId": "0x3e7",
            "ParentProcessGuid": guid(parent_name),
            "ParentProcessId": self._pid(parent_name),
            "ParentImage": parent_image,
            **(extra or {}),
        }
        return self._add(1, t, data, host)

    def connect(
        self,
        t: float,
        name: str,
        image: str,
        ip: str,
        port: int,
        host: str | None = None,
        inbound: bool = False,
    ) -> dict[str, Any]:
        """Sysmon 3: an outbound TCP connection of an earlier started process to `ip`:`port`;
        `inbound`: `ip` connected to the process's port `port` (Sysmon's source is the peer)."""
        local = {"Ip": "10.0.0.5", "Port": port if inbound else 50000 + len(self.records)}
        remote = {"Ip": ip, "Port": 50000 + len(self.records) if inbound else port}
        source, destination = (remote, local) if inbound else (local, remote)
        data = {
            "ProcessGuid": guid(name),
            "ProcessId": self._pid(name),
            "Image": image,
            "User": "CORP\\alice",
            "Protocol": "tcp",
            "Initiated": "false" if inbound else "true",
            "SourceIp": source["Ip"],
            "SourcePort": source["Port"],
            "DestinationIp": destination["Ip"],
            "DestinationPort": destination["Port"],
        }
        return self._add(3, t, data, host)

    def create_file(
        self, t: float, name: str, image: str, path: str, host: str | None = None
    ) -> dict[str, Any]:
        """Sysmon 11: a file created by an earlier started process."""
        data = {
            "ProcessGuid": guid(name),
            "ProcessId": self._pid(name),
            "Image": image,
            "TargetFilename": path,
            "CreationUtcTime": (BASE + timedelta(seconds=t)).strftime("%Y-%m-%d %H:%M:%S.000"),
            "User": "CORP\\alice",
        }
        return self._add(11, t, data, host)

    def act(
        self,
        event_id: int,
        t: float,
        name: str,
        image: str,
        fields: dict[str, Any],
        host: str | None = None,
    ) -> dict[str, Any]:
        """Any Sysmon event of an earlier started process (`fields`: its EventData besides the
        process: `TargetObject`, `ImageLoaded`, `PipeName`…)."""
        data = {"ProcessGuid": guid(name), "ProcessId": self._pid(name), "Image": image}
        return self._add(event_id, t, {**data, **fields}, host)

    def access(
        self, event_id: int, t: float, source: tuple[str, str], target: tuple[str, str], **f: Any
    ) -> dict[str, Any]:
        """Sysmon 10 (process access) or 8 (remote thread) between two started processes, each
        (short name, image)."""
        data = {
            "SourceProcessGuid": guid(source[0]),
            "SourceProcessId": self._pid(source[0]),
            "SourceImage": source[1],
            "TargetProcessGuid": guid(target[0]),
            "TargetProcessId": self._pid(target[0]),
            "TargetImage": target[1],
            **f,
        }
        return self._add(event_id, t, data, None)

    def system(self, event_id: int, t: float, fields: dict[str, Any]) -> dict[str, Any]:
        """A Sysmon event done by no process (6 driver load, 19-21 WMI)."""
        return self._add(event_id, t, fields, None)

    def _add(
        self, event_id: int, t: float, data: dict[str, Any], host: str | None
    ) -> dict[str, Any]:
        record = _record(event_id, t, host or self.host, data, len(self.records) + 1)
        self.records.append(record)
        return record

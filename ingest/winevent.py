"""One view over the many wrappings of a Windows event record.

The same Sysmon or Security event reaches us as flat Mordor/NXLog JSON, evtx-rs JSON
(`Event.System` + `Event.EventData`), xmltodict output of the event XML (Sysmon for Linux),
winlogbeat (`winlog.event_data`) and the Sentinel `SecurityEvent` / `WindowsEvent` tables.
`unwrap` finds the provider, event id, computer, system time and the named data fields, so the
Sysmon and Security mappings are written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provgraph.ingest.errors import ParseError
from provgraph.ingest.fields import as_int, as_time, host_names

SYSMON_PROVIDERS = frozenset({"microsoft-windows-sysmon", "linux-sysmon"})
SECURITY_PROVIDER = "microsoft-windows-security-auditing"


@dataclass(slots=True)
class WinRecord:
    shape: str  # mordor, evtx, winlogbeat, sentinel_windowsevent, sentinel_securityevent
    provider: str  # lower-case; "" when the shape does not say
    event_id: int
    computer: Any  # raw value, validated by the caller with the field name below
    computer_field: str
    time: Any  # the record's own (system/ingest) time, raw; None when absent
    time_field: str
    data: Mapping[str, Any]  # the event's named fields
    # graph v2, part 2: the logging process (System.Execution ProcessID: PowerShell 4104's
    # host process) and the account the provider ran for (System.Security UserID), raw
    execution_pid: Any = None
    user_sid: Any = None


def unwrap(record: Mapping[str, Any]) -> WinRecord:
    if not isinstance(record, Mapping):
        raise ParseError(None, f"expected a JSON object, got {type(record).__name__}")
    if "Event" in record:
        return _from_event_tree(record["Event"])
    if "winlog" in record:
        return _from_winlogbeat(record)
    if "SourceName" in record and "Hostname" in record:
        return _from_mordor(record)
    if "EventData" in record and "Computer" in record:
        return _from_windowsevent(record)
    if "Computer" in record and "EventID" in record:
        return _from_securityevent(record)
    raise ParseError(None, "not a Windows event record (no Event, winlog, Hostname or Computer)")


def _event_id(value: Any, field: str) -> int:
    # classic providers render EventID as {"#text": 4688, "#attributes": {"Qualifiers": ..}}
    if isinstance(value, Mapping):
        value = value.get("#text")
    if value is None:
        raise ParseError(field, "missing")
    return as_int(value, field)


def _attr(node: Any, name: str) -> Any:
    """An XML attribute in evtx-rs (`#attributes`) or xmltodict (`@name`) rendering."""
    if not isinstance(node, Mapping):
        return None
    attributes = node.get("#attributes")
    if isinstance(attributes, Mapping) and name in attributes:
        return attributes[name]
    return node.get("@" + name)


def _from_event_tree(event: Any) -> WinRecord:
    if not isinstance(event, Mapping) or not isinstance(event.get("System"), Mapping):
        raise ParseError("Event.System", "missing or not an object")
    system = event["System"]
    return WinRecord(
        shape="evtx",
        provider=str(_attr(system.get("Provider"), "Name") or "").lower(),
        event_id=_event_id(system.get("EventID"), "Event.System.EventID"),
        computer=system.get("Computer"),
        computer_field="Event.System.Computer",
        time=_attr(system.get("TimeCreated"), "SystemTime"),
        time_field="Event.System.TimeCreated.SystemTime",
        data=_event_data(event.get("EventData"), "Event.EventData"),
        execution_pid=_attr(system.get("Execution"), "ProcessID"),
        user_sid=_attr(system.get("Security"), "UserID"),
    )


def _event_data(node: Any, field: str) -> Mapping[str, Any]:
    """Named fields: evtx-rs gives a plain object; xmltodict gives `Data` as a list of
    {"@Name", "#text"} (or a single such object when there is one field)."""
    if node is None:
        return {}
    if not isinstance(node, Mapping):
        raise ParseError(field, f"expected an object, got {type(node).__name__}")
    items = node.get("Data")
    if not any(isinstance(i, Mapping) and "@Name" in i for i in _as_list(items)):
        return node
    named: dict[str, Any] = {}
    for item in _as_list(items):
        if isinstance(item, Mapping) and isinstance(item.get("@Name"), str):
            named[item["@Name"]] = item.get("#text")
    return named


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _from_winlogbeat(record: Mapping[str, Any]) -> WinRecord:
    winlog = record["winlog"]
    if not isinstance(winlog, Mapping):
        raise ParseError("winlog", "expected an object")
    host = record.get("host")
    computer = winlog.get("computer_name")
    if computer is None and isinstance(host, Mapping):
        computer = host.get("name")
    return WinRecord(
        shape="winlogbeat",
        provider=str(winlog.get("provider_name") or "").lower(),
        event_id=_event_id(winlog.get("event_id"), "winlog.event_id"),
        computer=computer,
        computer_field="winlog.computer_name",
        time=record.get("@timestamp"),
        time_field="@timestamp",
        data=_event_data(winlog.get("event_data"), "winlog.event_data"),
        execution_pid=(winlog.get("process") or {}).get("pid")
        if isinstance(winlog.get("process"), Mapping)
        else None,
        user_sid=(winlog.get("user") or {}).get("identifier")
        if isinstance(winlog.get("user"), Mapping)
        else None,
    )


def _from_mordor(record: Mapping[str, Any]) -> WinRecord:
    # `host` is the collector (wec.internal...), `Hostname` the endpoint; `@timestamp` is UTC
    # ingest time, `EventTime` local time with no zone (see datasets README)
    return WinRecord(
        shape="mordor",
        provider=str(record.get("SourceName") or "").lower(),
        event_id=_event_id(record.get("EventID"), "EventID"),
        computer=record.get("Hostname"),
        computer_field="Hostname",
        time=record.get("@timestamp"),
        time_field="@timestamp",
        data=record,
        execution_pid=record.get("ExecutionProcessID"),
        user_sid=record.get("UserID"),
    )


def _from_windowsevent(record: Mapping[str, Any]) -> WinRecord:
    return WinRecord(
        shape="sentinel_windowsevent",
        provider=str(record.get("Provider") or "").lower(),
        event_id=_event_id(record.get("EventID"), "EventID"),
        computer=record.get("Computer"),
        computer_field="Computer",
        time=record.get("TimeGenerated"),
        time_field="TimeGenerated",
        data=_event_data(record.get("EventData"), "EventData"),
    )


def _from_securityevent(record: Mapping[str, Any]) -> WinRecord:
    # the SecurityEvent table only holds the Security log, so the provider is implied
    provider = record.get("EventSourceName") or SECURITY_PROVIDER
    return WinRecord(
        shape="sentinel_securityevent",
        provider=str(provider).lower(),
        event_id=_event_id(record.get("EventID"), "EventID"),
        computer=record.get("Computer"),
        computer_field="Computer",
        time=record.get("TimeGenerated"),
        time_field="TimeGenerated",
        data=record,
    )


def host_of(win: WinRecord) -> tuple[str, str | None]:
    """(host key, fqdn) of the record's Computer; a record without one names no host."""
    if win.computer in (None, ""):
        raise ParseError(win.computer_field, "missing")
    return host_names(win.computer, win.computer_field)


def windows_base(win: WinRecord, origin: Any, raw: dict[str, Any]) -> dict[str, Any]:
    """The Event fields every Windows event-log record shares (Security, System, PowerShell):
    its system time, host and origin. Sysmon keeps its own (UtcTime, os by provider)."""
    if win.time in (None, ""):
        raise ParseError(win.time_field, "missing")
    host, fqdn = host_of(win)
    return dict(
        ts=as_time(win.time, win.time_field),
        host=host,
        host_fqdn=fqdn,
        os="windows",
        origin=origin,
        raw=raw,
    )

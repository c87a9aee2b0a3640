"""Windows Security auditing (4688, 4689, 4663) to normalised events.

Security events carry no process GUID: the new process of a 4688 is keyed by host + pid +
event time, its creator (and the actor of 4689/4663) by host + pid only, which `graph`
resolves to the latest process with that pid.

Time: the record's own UTC time (evtx SystemTime, Sentinel TimeGenerated, Mordor/winlogbeat
`@timestamp`). Mordor's `EventTime` is local time with no zone, so it is never used; its
`@timestamp` is the collector's ingest time, typically 1-2 s after the event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provgraph.ingest.errors import ParseError, Skipped
from provgraph.ingest.fields import (
    as_int,
    as_pid,
    as_time,
    host_names,
    join_user,
    opt_pid,
    opt_str,
    req,
    req_str,
)
from provgraph.ingest.model import (
    Event,
    FileOp,
    Kind,
    Origin,
    ProcessRef,
    RegistryFacts,
    RegistryOp,
    normalise_registry_path,
    process_uid,
)
from provgraph.ingest.sysmon import req_host
from provgraph.ingest.winevent import SECURITY_PROVIDER, WinRecord, unwrap

# file rights that change content, metadata or existence; 4663 without one of them is a read
_WRITE_DATA = 0x2
_APPEND_DATA = 0x4
_DELETE = 0x10000
_GENERIC_ALL = 0x10000000
_GENERIC_WRITE = 0x40000000
_CONTENT_RIGHTS = _WRITE_DATA | _APPEND_DATA | _GENERIC_ALL | _GENERIC_WRITE
_WRITE_RIGHTS = (
    _CONTENT_RIGHTS
    | 0x10  # WriteEA
    | 0x40  # DeleteChild
    | 0x100  # WriteAttributes
    | _DELETE
    | 0x40000  # WRITE_DAC
    | 0x80000  # WRITE_OWNER
)
_INTEGRITY = {
    "S-1-16-0": "Untrusted",
    "S-1-16-4096": "Low",
    "S-1-16-8192": "Medium",
    "S-1-16-8448": "MediumPlus",
    "S-1-16-12288": "High",
    "S-1-16-16384": "System",
}


def parse_security(record: Mapping[str, Any], origin: Origin) -> list[Event]:
    win = unwrap(record)
    if win.provider and win.provider != SECURITY_PROVIDER:
        return Skipped(f"provider {win.provider} is not Security auditing")
    return from_winrecord(win, origin, dict(record))


def from_winrecord(win: WinRecord, origin: Origin, raw: dict[str, Any]) -> list[Event]:
    handler = _HANDLERS.get(win.event_id)
    if handler is None:
        return Skipped(f"security EventID {win.event_id} not modelled")
    if win.time in (None, ""):
        raise ParseError(win.time_field, "missing")
    host, fqdn = host_names(req_host(win), win.computer_field)
    base = dict(
        ts=as_time(win.time, win.time_field), host=host, host_fqdn=fqdn, origin=origin, raw=raw
    )
    return handler(win.data, base)


def _process_start(data: Mapping[str, Any], base: dict[str, Any]) -> list[Event]:
    host, ts = base["host"], base["ts"]
    pid = as_pid(req(data, "NewProcessId"), "NewProcessId")
    process = ProcessRef(
        uid=process_uid(host=host, pid=pid, start_time=ts),
        pid=pid,
        image=req_str(data, "NewProcessName"),
        command_line=opt_str(data, "CommandLine"),
        user=_target_user(data) or _subject_user(data),
        start_time=ts,
        logon_id=_logon_id(data, "TargetLogonId") or _logon_id(data, "SubjectLogonId"),
        integrity=_INTEGRITY.get(opt_str(data, "MandatoryLabel") or ""),
    )
    return [Event(kind=Kind.PROCESS_START, process=process, parent=_creator(data, host), **base)]


def _creator(data: Mapping[str, Any], host: str) -> ProcessRef | None:
    pid = opt_pid(data, "ProcessId")
    if pid is None:
        return None
    return ProcessRef(
        uid=process_uid(host=host, pid=pid),
        pid=pid,
        image=opt_str(data, "ParentProcessName"),
        user=_subject_user(data),
        logon_id=_logon_id(data, "SubjectLogonId"),
    )


def _target_user(data: Mapping[str, Any]) -> str | None:
    # 4688 v2 names the new process's account in Target*; "-" when it is the creator's
    name = opt_str(data, "TargetUserName")
    if name:
        return join_user(opt_str(data, "TargetDomainName"), name)
    return opt_str(data, "TargetAccount")


def _subject_user(data: Mapping[str, Any]) -> str | None:
    name = opt_str(data, "SubjectUserName")
    if name:
        return join_user(opt_str(data, "SubjectDomainName"), name)
    return opt_str(data, "Account")  # Sentinel SecurityEvent: DOMAIN\user


def _logon_id(data: Mapping[str, Any], key: str) -> str | None:
    value = opt_str(data, key)
    if value is None or value.lower() in ("0x0", "0"):
        return None
    return value.lower()


def _actor(data: Mapping[str, Any], host: str) -> ProcessRef:
    pid = as_pid(req(data, "ProcessId"), "ProcessId")
    return ProcessRef(
        uid=process_uid(host=host, pid=pid),
        pid=pid,
        image=opt_str(data, "ProcessName"),
        user=_subject_user(data),
        logon_id=_logon_id(data, "SubjectLogonId"),
    )


def _process_end(data: Mapping[str, Any], base: dict[str, Any]) -> list[Event]:
    return [Event(kind=Kind.PROCESS_END, process=_actor(data, base["host"]), **base)]


def _mask(data: Mapping[str, Any]) -> int:
    mask = as_int(req(data, "AccessMask"), "AccessMask")
    if mask < 0 or mask >= 2**32:
        raise ParseError("AccessMask", f"out of range: {mask}")
    return mask


def _object_access(data: Mapping[str, Any], base: dict[str, Any]) -> list[Event]:
    object_type = req_str(data, "ObjectType")
    if object_type.lower() == "key":
        return _key_access(data, base, "4663")
    if object_type.lower() != "file":
        return Skipped(f"security 4663 ObjectType {object_type} is not a file or key")
    mask = _mask(data)
    if not mask & _WRITE_RIGHTS:
        return Skipped("security 4663 access mask without a write right")
    return [
        Event(
            kind=Kind.FILE_WRITE,
            process=_actor(data, base["host"]),
            file_path=req_str(data, "ObjectName"),
            file_op=_file_op(mask),
            access_mask=hex(mask),
            **base,
        )
    ]


def _file_op(mask: int) -> FileOp:
    if mask & _CONTENT_RIGHTS:
        return FileOp.MODIFY
    if mask & _DELETE:
        return FileOp.DELETE
    return FileOp.MODIFY  # attributes, EA, ACL or owner changed


# -- k1: registry keys and values (4656/4663 ObjectType Key, 4657) ----------------------------
_KEY_SET_VALUE = 0x2
_KEY_CREATE_SUB_KEY = 0x4
_KEY_WRITE_RIGHTS = (
    _KEY_SET_VALUE
    | _KEY_CREATE_SUB_KEY
    | 0x20  # KEY_CREATE_LINK
    | _DELETE
    | 0x40000  # WRITE_DAC
    | 0x80000  # WRITE_OWNER
    | _GENERIC_ALL
    | _GENERIC_WRITE
)


def _key_op(mask: int) -> RegistryOp:
    if mask & (_KEY_SET_VALUE | _GENERIC_ALL | _GENERIC_WRITE):
        return RegistryOp.SET_VALUE
    if mask & _KEY_CREATE_SUB_KEY:
        return RegistryOp.CREATE
    if mask & _DELETE:
        return RegistryOp.DELETE
    return RegistryOp.MODIFY  # a link, the ACL or the owner


def _key_access(data: Mapping[str, Any], base: dict[str, Any], event_id: str) -> list[Event]:
    """A handle to a key requested (4656) or used (4663) with a write right. A 4656 says
    what was asked for, not what was done: its op is what the rights allow."""
    mask = _mask(data)
    if not mask & _KEY_WRITE_RIGHTS:
        return Skipped(f"security {event_id} key access mask without a write right")
    facts = RegistryFacts(
        path=normalise_registry_path(req_str(data, "ObjectName")),
        op=_key_op(mask),
        event_type=event_id,
        access_mask=hex(mask),
    )
    return [Event(kind=Kind.REGISTRY, process=_actor(data, base["host"]), registry=facts, **base)]


def _handle_request(data: Mapping[str, Any], base: dict[str, Any]) -> list[Event]:
    object_type = req_str(data, "ObjectType")
    if object_type.lower() != "key":
        return Skipped(f"security 4656 ObjectType {object_type} is not a registry key")
    return _key_access(data, base, "4656")


# 4657 OperationType, as message ids (evtx) or rendered text (Sentinel, winlogbeat)
_VALUE_OPS = {
    "%%1904": RegistryOp.CREATE,
    "new registry value created": RegistryOp.CREATE,
    "%%1905": RegistryOp.SET_VALUE,
    "existing registry value modified": RegistryOp.SET_VALUE,
    "%%1906": RegistryOp.DELETE,
    "registry value deleted": RegistryOp.DELETE,
}


def _value_modified(data: Mapping[str, Any], base: dict[str, Any]) -> list[Event]:
    key = normalise_registry_path(req_str(data, "ObjectName"))
    value = opt_str(data, "ObjectValueName")
    operation = (opt_str(data, "OperationType") or "").strip().lower()
    facts = RegistryFacts(
        path=key.rstrip("\\") + "\\" + value if value and value != "-" else key,
        op=_VALUE_OPS.get(operation, RegistryOp.SET_VALUE),
        event_type="4657",
        details=_value(opt_str(data, "NewValue")),
    )
    return [Event(kind=Kind.REGISTRY, process=_actor(data, base["host"]), registry=facts, **base)]


def _value(text: str | None) -> str | None:
    return None if text is None or text.strip() in ("", "-") else text


_HANDLERS = {
    4688: _process_start,
    4689: _process_end,
    4663: _object_access,
    4656: _handle_request,
    4657: _value_modified,
}

__all__ = ["parse_security", "from_winrecord"]

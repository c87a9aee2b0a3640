"""Windows Security auditing to normalised events: processes (4688, 4689), file access (4663),
and (graph v2, part 2) logons (4624, 4625, 4634, 4647, 4648, 4672), share access (5140,
5145), service installs (4697), scheduled tasks (4698-4702) and filtered connections (5156;
5158 binds are skipped, saying why).

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
    as_ip,
    as_pid,
    as_sid,
    join_user,
    opt_pid,
    opt_str,
    registry_details,
    req,
    req_str,
)
from provgraph.ingest.model import (
    SHARE_NAME_LIMIT,
    TASK_CONTENT_LIMIT,
    AccountRef,
    Event,
    FileOp,
    Kind,
    LogonFacts,
    Origin,
    ProcessRef,
    RegistryFacts,
    RegistryOp,
    ServiceFacts,
    ShareFacts,
    TaskFacts,
    account_ref,
    integrity_level,
    normalise_registry_path,
    process_uid,
)
from provgraph.ingest.winevent import SECURITY_PROVIDER, WinRecord, unwrap, windows_base

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


def parse_security(record: Mapping[str, Any], origin: Origin) -> list[Event]:
    win = unwrap(record)
    if win.provider and win.provider != SECURITY_PROVIDER:
        return Skipped(f"provider {win.provider} is not Security auditing")
    return from_winrecord(win, origin, dict(record))


def from_winrecord(win: WinRecord, origin: Origin, raw: dict[str, Any]) -> list[Event]:
    handler = _HANDLERS.get(win.event_id)
    if handler is None:
        return Skipped(f"security EventID {win.event_id} not modelled")
    base = windows_base(win, origin, raw)
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
        user_sid=as_sid(data.get("TargetUserSid"))
        if _target_user(data)
        else as_sid(data.get("SubjectUserSid")),
        start_time=ts,
        logon_id=_logon_id(data, "TargetLogonId") or _logon_id(data, "SubjectLogonId"),
        integrity_level=integrity_level(opt_str(data, "MandatoryLabel")),
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
        user_sid=as_sid(data.get("SubjectUserSid")),
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
        user_sid=as_sid(data.get("SubjectUserSid")),
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


# -- accounts, logons and Windows system changes (graph v2, part 2) ---------------------------


def _account(data: Mapping[str, Any], prefix: str) -> AccountRef | None:
    """`<prefix>UserSid` / `<prefix>DomainName` / `<prefix>UserName` (prefix Subject, Target)."""
    return account_ref(
        as_sid(data.get(prefix + "UserSid")),
        opt_str(data, prefix + "DomainName"),
        opt_str(data, prefix + "UserName"),
    )


def _dash(data: Mapping[str, Any], key: str) -> str | None:
    """A text field, None for Windows' "-" (nothing to say)."""
    value = opt_str(data, key)
    if value is None or value.strip() in ("-", ""):
        return None
    return value.strip()


def _source_ip(data: Mapping[str, Any]) -> str | None:
    value = _dash(data, "IpAddress")
    if value is None:
        return None
    try:
        return as_ip(value.removeprefix("::ffff:"), "IpAddress")
    except ParseError:
        return None  # "LOCAL", host names: not an address


def _port(data: Mapping[str, Any], key: str) -> int | None:
    value = _dash(data, key)
    if value is None:
        return None
    port = as_int(value, key)
    return port if 0 < port < 65536 else None


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = _dash(data, key)
    return None if value is None else as_int(value, key)


def _hex(data: Mapping[str, Any], key: str) -> str | None:
    value = _dash(data, key)
    return None if value is None else hex(as_int(value, key))


def _guid(data: Mapping[str, Any], key: str) -> str | None:
    value = _dash(data, key)
    if value is None:
        return None
    text = value.strip("{}").lower()
    return None if not text.strip("0-") else text


# Windows renders some values as message ids: %%1842 "Yes", %%1843 "No"
_YES_NO = {"%%1842": True, "%%1843": False, "yes": True, "no": False}


def _logon_type(data: Mapping[str, Any]) -> int | None:
    return _int(data, "LogonType")


def _logon(data: Mapping[str, Any], base: dict[str, Any], failed: bool) -> list[Event]:
    elevated = _dash(data, "ElevatedToken")
    facts = LogonFacts(
        account=_account(data, "Target"),
        subject=_account(data, "Subject"),
        logon_id=_logon_id(data, "TargetLogonId"),
        logon_type=_logon_type(data),
        failed=failed,
        status=_hex(data, "Status") if failed else None,
        sub_status=_hex(data, "SubStatus") if failed else None,
        source_ip=_source_ip(data),
        source_port=_port(data, "IpPort"),
        workstation=_dash(data, "WorkstationName"),
        auth_package=_dash(data, "AuthenticationPackageName"),
        logon_process=_dash(data, "LogonProcessName"),
        logon_guid=_guid(data, "LogonGuid"),
        elevated=_YES_NO.get(elevated.lower()) if elevated else None,
        process_name=_dash(data, "ProcessName"),
        key_length=_int(data, "KeyLength"),
        impersonation_level=_dash(data, "ImpersonationLevel"),
        outbound_user=_dash(data, "TargetOutboundUserName"),
        subject_sid=as_sid(data.get("SubjectUserSid")),
    )
    if facts.account is None:
        raise ParseError("TargetUserName", "missing, and no TargetUserSid either")
    if not failed and facts.logon_id is None:
        raise ParseError("TargetLogonId", "missing")
    return [Event(kind=Kind.LOGON, process=None, logon=facts, **base)]


def _logon_success(data: Mapping[str, Any], base: dict[str, Any]) -> list[Event]:
    return _logon(data, base, failed=False)


def _logon_failure(data: Mapping[str, Any], base: dict[str, Any]) -> list[Event]:
    return _logon(data, base, failed=True)


def _logoff(data: Mapping[str, Any], base: dict[str, Any]) -> list[Event]:
    logon_id = _logon_id(data, "TargetLogonId")
    if logon_id is None:
        raise ParseError("TargetLogonId", "missing")
    facts = LogonFacts(
        account=_account(data, "Target"), logon_id=logon_id, logon_type=_logon_type(data)
    )
    return [Event(kind=Kind.LOGOFF, process=None, logon=facts, **base)]


def _special_logon(data: Mapping[str, Any], base: dict[str, Any]) -> list[Event]:
    logon_id = _logon_id(data, "SubjectLogonId")
    if logon_id is None:
        raise ParseError("SubjectLogonId", "missing")
    privileges = tuple(p for p in (opt_str(data, "PrivilegeList") or "").split() if p != "-")
    facts = LogonFacts(
        account=_account(data, "Subject"),
        logon_id=logon_id,
        elevated=True,
        privileges=privileges,
    )
    return [Event(kind=Kind.SPECIAL_LOGON, process=None, logon=facts, **base)]


def _explicit_credentials(data: Mapping[str, Any], base: dict[str, Any]) -> list[Event]:
    account = _account(data, "Target")
    if account is None:
        raise ParseError("TargetUserName", "missing")
    facts = LogonFacts(
        account=account,
        subject=_account(data, "Subject"),
        logon_id=_logon_id(data, "SubjectLogonId"),
        logon_guid=_guid(data, "LogonGuid"),
        source_ip=_source_ip(data),
        source_port=_port(data, "IpPort"),
        target_server=_dash(data, "TargetServerName"),
        target_info=_dash(data, "TargetInfo"),
    )
    pid = opt_pid(data, "ProcessId")
    process = None
    if pid is not None and pid != 0:
        process = _actor(data, base["host"])
    return [Event(kind=Kind.EXPLICIT_CREDENTIALS, process=process, logon=facts, **base)]


def _share_access(data: Mapping[str, Any], base: dict[str, Any]) -> list[Event]:
    relative = _dash(data, "RelativeTargetName")
    truncated: tuple[str, ...] = ()
    if relative is not None and len(relative) > SHARE_NAME_LIMIT:
        relative, truncated = relative[:SHARE_NAME_LIMIT], ("RelativeTargetName",)
    facts = ShareFacts(
        share_name=req_str(data, "ShareName").strip(),
        account=_account(data, "Subject"),
        logon_id=_logon_id(data, "SubjectLogonId"),
        share_path=_dash(data, "ShareLocalPath"),
        relative_target=relative,
        access_mask=_hex(data, "AccessMask"),
        source_ip=_source_ip(data),
        source_port=_port(data, "IpPort"),
    )
    return [Event(kind=Kind.SHARE_ACCESS, process=None, share=facts, truncated=truncated, **base)]


def service_image(image_path: str | None) -> str | None:
    """The executable of a service's ImagePath (a command line): the quoted head, else the
    text up to the first ".exe"/".sys"/".dll" (unquoted paths with spaces), else the first
    word. None for kernel-relative names ("system32\\drivers\\x.sys") left as they are."""
    if not image_path:
        return None
    text = image_path.strip()
    if text.startswith('"'):
        head = text[1:].split('"', 1)[0]
        return head or None
    lowered = text.lower()
    for ext in (".exe", ".sys", ".dll"):
        at = lowered.find(ext)
        if at > 0:
            return text[: at + len(ext)]
    return text.split(" ", 1)[0] or None


def _service_install(data: Mapping[str, Any], base: dict[str, Any]) -> list[Event]:
    image = _dash(data, "ServiceFileName")
    facts = ServiceFacts(
        service_name=req_str(data, "ServiceName").strip(),
        image_path=image,
        image_file=service_image(image),
        service_type=_dash(data, "ServiceType"),
        start_type=_dash(data, "ServiceStartType"),
        service_account=_dash(data, "ServiceAccount"),
        account=_account(data, "Subject"),
        logon_id=_logon_id(data, "SubjectLogonId"),
    )
    return [Event(kind=Kind.SERVICE_INSTALL, process=None, service=facts, **base)]


_TASK_OPS = {4698: "created", 4699: "deleted", 4700: "enabled", 4701: "disabled", 4702: "updated"}


def task_change(
    event_id: int, data: Mapping[str, Any], base: dict[str, Any], account: AccountRef | None
) -> list[Event]:
    content = _dash(data, "TaskContentNew") or _dash(data, "TaskContent")
    truncated: tuple[str, ...] = ()
    if content is not None and len(content) > TASK_CONTENT_LIMIT:
        content, truncated = content[:TASK_CONTENT_LIMIT], ("TaskContent",)
    facts = TaskFacts(
        task_name=req_str(data, "TaskName").strip(),
        op=_TASK_OPS[event_id],
        content=content,
        account=account,
        logon_id=_logon_id(data, "SubjectLogonId"),
    )
    # Windows 10+ names the client process that asked (4700/4701 ClientProcessId)
    pid = opt_pid(data, "ClientProcessId")
    process = (
        ProcessRef(uid=process_uid(host=base["host"], pid=pid), pid=pid)
        if pid is not None and pid != 0
        else None
    )
    return [Event(kind=Kind.TASK_CHANGE, process=process, task=facts, truncated=truncated, **base)]


def _task(event_id: int) -> Any:
    def handler(data: Mapping[str, Any], base: dict[str, Any]) -> list[Event]:
        return task_change(event_id, data, base, _account(data, "Subject"))

    return handler


# Windows renders the direction as a message id: %%14592 inbound, %%14593 outbound
_DIRECTIONS = {"%%14592": "inbound", "%%14593": "outbound", "inbound": "inbound"}
_PROTOCOLS = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmp"}


def _filtered_connection(data: Mapping[str, Any], base: dict[str, Any]) -> list[Event]:
    """5156: WFP allowed a connection. Like Sysmon 3, Source is the side that initiated it:
    outbound, the remote end is Dest; inbound, it is Source (the peer)."""
    direction = _DIRECTIONS.get((_dash(data, "Direction") or "outbound").lower(), "outbound")
    inbound = direction == "inbound"
    remote, local = ("Source", "Dest") if inbound else ("Dest", "Source")
    pid = as_pid(req(data, "ProcessId"), "ProcessId")
    app = _dash(data, "Application")
    image = app if app and app.lower() != "system" else None
    process = ProcessRef(uid=process_uid(host=base["host"], pid=pid), pid=pid, image=image)
    protocol = _dash(data, "Protocol")
    return [
        Event(
            kind=Kind.NETWORK_CONNECT,
            process=process,
            remote_ip=as_ip(req(data, remote + "Address"), remote + "Address"),
            remote_port=_port(data, remote + "Port"),
            local_ip=as_ip(local_ip, local + "Address")
            if (local_ip := _dash(data, local + "Address"))
            else None,
            local_port=_port(data, local + "Port"),
            protocol=_PROTOCOLS.get(protocol, protocol.lower()) if protocol else None,
            direction=direction,
            **base,
        )
    ]


def _bind(data: Mapping[str, Any], base: dict[str, Any]) -> list[Event]:
    return Skipped(
        "security 5158 (a bind to a local port) is not kept: it names no peer, and the "
        "connection that follows is its own 5156"
    )


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


# 4657 OperationType, as message ids (evtx) or rendered text (Sentinel, winlogbeat). A value
# first written is a value set, as Sysmon logs it (13 SetValue, not 12 CreateKey, which is for
# keys): 4657 always names a value.
_VALUE_OPS = {
    "%%1904": RegistryOp.SET_VALUE,
    "new registry value created": RegistryOp.SET_VALUE,
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
        details=registry_details(opt_str(data, "NewValueType"), opt_str(data, "NewValue")),
    )
    return [Event(kind=Kind.REGISTRY, process=_actor(data, base["host"]), registry=facts, **base)]


_HANDLERS = {
    4688: _process_start,
    4689: _process_end,
    4663: _object_access,
    # -- accounts, logons and Windows system changes (graph v2, part 2) --
    4624: _logon_success,
    4625: _logon_failure,
    4634: _logoff,
    4647: _logoff,
    4648: _explicit_credentials,
    4672: _special_logon,
    5140: _share_access,
    5145: _share_access,
    4697: _service_install,
    **{event_id: _task(event_id) for event_id in _TASK_OPS},
    5156: _filtered_connection,
    5158: _bind,
    4656: _handle_request,
    4657: _value_modified,
}

__all__ = ["parse_security", "from_winrecord"]

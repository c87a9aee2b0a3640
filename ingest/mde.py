"""Microsoft Defender for Endpoint Advanced Hunting rows (DeviceProcessEvents,
DeviceFileEvents, DeviceNetworkEvents, DeviceLogonEvents), from JSON or CSV exports.

Rows come flat (Advanced Hunting query results, CSV) or wrapped as the Streaming API writes
them to Event Hub and Storage: `{"time", "tenantId", "category": "AdvancedHunting-<Table>",
"properties": {<the row>}}` (see `unwrap`); Event Hub documents holding many such records
are cut into records by `provgraph.ingest.capture`.

The table is told by `ActionType`, which every row has. Process identity is host + pid +
creation time (Advanced Hunting has no process GUID column in these tables). CSV cells are
all text and empty cells mean "absent"; the readers in `fields` accept both typings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from provgraph.ingest.errors import ParseError, Skipped
from provgraph.ingest.fields import (
    as_sid,
    as_time,
    host_names,
    join_user,
    opt_ip,
    opt_pid,
    opt_port,
    opt_str,
    registry_details,
    req,
    req_str,
)
from provgraph.ingest.model import (
    Event,
    FileOp,
    ImageFacts,
    ImageLoadFacts,
    Kind,
    LogonFacts,
    Origin,
    PipeFacts,
    ProcessAccessFacts,
    ProcessRef,
    RegistryFacts,
    RegistryOp,
    account_ref,
    integrity_level,
    logon_id_hex,
    logon_type_number,
    normalise_hash,
    normalise_registry_path,
    process_uid,
)

_FILE_OPS = {
    "filecreated": FileOp.CREATE,
    "filemodified": FileOp.MODIFY,
    "filerenamed": FileOp.RENAME,
    "filedeleted": FileOp.DELETE,
}
_OUTBOUND = {"connectionsuccess", "connectionattempt", "connectionfailed", "connectionrequest"}
_INBOUND = {"inboundconnectionaccepted"}


def parse_mde(record: Mapping[str, Any], origin: Origin) -> list[Event]:
    if not isinstance(record, Mapping):
        raise ParseError(None, f"expected a JSON object, got {type(record).__name__}")
    if "properties" in record and "category" in record and "ActionType" not in record:
        return _exported(record, origin)
    return _row(record, origin)


# ---- Streaming API export shape (Event Hub / Storage) ----------------------------------------
EXPORT_PREFIX = "advancedhunting-"  # the category is this (any case) + the table name


def unwrap(record: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    """(table, row) of a Streaming API record; None when its category is not an Advanced
    Hunting table (Azure Monitor sends other logs in the same envelope). The row gains a
    "Table" key naming its table, as query results with a Table column have, unless it has
    one already."""
    category = record.get("category")
    if not isinstance(category, str):
        raise ParseError("category", f"expected text, got {type(category).__name__}")
    if not category.lower().startswith(EXPORT_PREFIX):
        return None
    table = category[len(EXPORT_PREFIX) :]
    row = record.get("properties")
    if not isinstance(row, Mapping):
        raise ParseError("properties", f"expected an object, got {type(row).__name__}")
    return table, row if "Table" in row else {"Table": table, **row}


def _exported(record: Mapping[str, Any], origin: Origin) -> list[Event]:
    unwrapped = unwrap(record)
    if unwrapped is None:
        return Skipped(f"category {record['category']} is not a Defender Advanced Hunting table")
    table, row = unwrapped
    if row.get("ActionType") in (None, ""):
        # DeviceInfo, DeviceNetworkInfo, alert and email tables: state, not activity
        return Skipped(f"mde table {table or '(unnamed)'} has no ActionType: not provenance")
    try:
        return _row(row, origin)
    except ParseError as exc:  # name the field where it is in the record as written
        field = f"properties.{exc.field}" if exc.field else "properties"
        raise ParseError(field, exc.reason) from None


def _row(record: Mapping[str, Any], origin: Origin) -> list[Event]:
    action = req_str(record, "ActionType")
    key = action.lower()
    if key == "processcreated":
        return [_process_start(record, origin)]
    if key in _FILE_OPS:
        return [_file(record, _FILE_OPS[key], origin)]
    if key in _OUTBOUND or key in _INBOUND:
        return [_network(record, key in _INBOUND, origin)]
    if key in K1_ACTIONS:
        return [K1_ACTIONS[key](record, origin)]
    if key in _LOGONS:
        return _logon(record, _LOGONS[key], origin)
    if key == _UNKNOWN_OUTCOME:
        return Skipped("mde LogonAttempted: the attempt's outcome is not logged (no session)")
    return Skipped(f"mde ActionType {action} not modelled")


def _time(record: Mapping[str, Any], key: str) -> datetime | None:
    value = record.get(key)
    # Advanced Hunting times are UTC; CSV exports may drop the Z
    return None if value in (None, "") else as_time(value, key, naive_is_utc=True)


def _base(record: Mapping[str, Any], origin: Origin) -> dict[str, Any]:
    host, fqdn = host_names(req(record, "DeviceName"), "DeviceName")
    ts = _time(record, "Timestamp")
    if ts is None:
        raise ParseError("Timestamp", "missing")
    return {"ts": ts, "host": host, "host_fqdn": fqdn, "origin": origin, "raw": dict(record)}


def _path(record: Mapping[str, Any], folder_key: str, name_key: str) -> str | None:
    """FolderPath usually ends with the file name already; join when it does not."""
    folder, name = opt_str(record, folder_key), opt_str(record, name_key)
    if not folder:
        return name
    if not name or folder.lower().rstrip("\\/").endswith(name.lower()):
        return folder
    separator = "/" if folder.startswith("/") else "\\"
    return folder.rstrip("\\/") + separator + name


def _process(
    record: Mapping[str, Any], prefix: str, host: str, user: str | None, facts: bool = True
) -> ProcessRef:
    """The row's subject process (prefix "") or its initiating process ("InitiatingProcess").
    `facts`: read its image's PE facts too. Its account's SID and its logon session come from
    `AccountSid`/`LogonId` (or `InitiatingProcessAccountSid`/`InitiatingProcessLogonId`)."""
    p = prefix or "Process"
    pid = opt_pid(record, p + "Id")
    if pid is None:
        raise ParseError(p + "Id", "missing")
    start = _time(record, p + "CreationTime")
    return ProcessRef(
        uid=process_uid(host=host, pid=pid, start_time=start),
        pid=pid,
        image=_path(record, prefix + "FolderPath", prefix + "FileName"),
        command_line=opt_str(record, p + "CommandLine"),
        user=user,
        start_time=start,
        integrity_level=integrity_level(opt_str(record, p + "IntegrityLevel")),
        image_facts=_image_facts(record, prefix, p) if facts else None,
        user_sid=as_sid(record.get(prefix + "AccountSid")),
        logon_id=logon_id_hex(record.get(prefix + "LogonId")),
    )


def _image_facts(record: Mapping[str, Any], prefix: str, p: str) -> ImageFacts | None:
    """`SHA1`/`SHA256`/`MD5` and `ProcessVersionInfo*` of the subject process, or the same
    columns prefixed `InitiatingProcess` for the initiator (whose signature columns too)."""
    info = p + "VersionInfo"
    status = opt_str(record, p + "SignatureStatus") if prefix else None
    facts = ImageFacts(
        original_file_name=opt_str(record, info + "OriginalFileName"),
        company=opt_str(record, info + "CompanyName"),
        product=opt_str(record, info + "ProductName"),
        description=opt_str(record, info + "FileDescription"),
        product_version=opt_str(record, info + "ProductVersion"),
        md5=normalise_hash("md5", opt_str(record, prefix + "MD5")),
        sha1=normalise_hash("sha1", opt_str(record, prefix + "SHA1")),
        sha256=normalise_hash("sha256", opt_str(record, prefix + "SHA256")),
        signature_status=status,
        signed=_signed(status),
    )
    return facts if facts.present() else None


def _signed(status: str | None) -> bool | None:
    # "Valid", "Invalid", "Expired"… are signed; "Unsigned" is not; "Unknown" says nothing
    if status is None or status.lower() == "unknown":
        return None
    return status.lower() != "unsigned"


def _initiator(record: Mapping[str, Any], host: str, facts: bool = False) -> ProcessRef:
    """The initiating process; its image facts are read from process creation rows only
    (every row repeats them, and one per process is all the graph keeps)."""
    user = join_user(
        opt_str(record, "InitiatingProcessAccountDomain"),
        opt_str(record, "InitiatingProcessAccountName"),
    )
    return _process(record, "InitiatingProcess", host, user, facts)


def _process_start(record: Mapping[str, Any], origin: Origin) -> Event:
    base = _base(record, origin)
    user = join_user(opt_str(record, "AccountDomain"), opt_str(record, "AccountName"))
    process = _process(record, "", base["host"], user)
    if process.image is None:
        raise ParseError("FolderPath", "missing, and no FileName either")
    return Event(
        kind=Kind.PROCESS_START,
        process=process,
        parent=_initiator(record, base["host"], facts=True),
        **base,
    )


def _file(record: Mapping[str, Any], op: FileOp, origin: Origin) -> Event:
    base = _base(record, origin)
    path = _path(record, "FolderPath", "FileName")
    if path is None:
        raise ParseError("FolderPath", "missing, and no FileName either")
    previous = _path(record, "PreviousFolderPath", "PreviousFileName")
    return Event(
        kind=Kind.FILE_WRITE,
        process=_initiator(record, base["host"]),
        file_path=path,
        file_op=op,
        previous_path=previous if op is FileOp.RENAME else None,
        **base,
    )


def _network(record: Mapping[str, Any], inbound: bool, origin: Origin) -> Event:
    base = _base(record, origin)
    remote_ip = opt_ip(record, "RemoteIP")
    if remote_ip is None:
        raise ParseError("RemoteIP", "missing")
    return Event(
        kind=Kind.NETWORK_CONNECT,
        process=_initiator(record, base["host"]),
        remote_ip=remote_ip,
        remote_port=opt_port(record, "RemotePort"),
        remote_hostname=opt_str(record, "RemoteUrl"),
        local_ip=opt_ip(record, "LocalIP"),
        local_port=opt_port(record, "LocalPort"),
        protocol=_protocol(opt_str(record, "Protocol")),
        direction="inbound" if inbound else "outbound",
        **base,
    )


def _protocol(value: str | None) -> str | None:
    # MDE says Tcp, TcpV4, TcpV6, Udp...; the graph wants tcp/udp
    if not value:
        return None
    text = value.lower()
    return text[:-2] if text.endswith(("v4", "v6")) else text


# -- k1: DeviceRegistryEvents, DeviceImageLoadEvents, and DeviceEvents actions on processes,
# pipes and drivers ---------------------------------------------------------------------------
_REGISTRY_ACTIONS = {
    "registrykeycreated": RegistryOp.CREATE,
    "registrykeydeleted": RegistryOp.DELETE,
    "registrykeyrenamed": RegistryOp.RENAME,
    "registryvaluedeleted": RegistryOp.DELETE,
    "registryvalueset": RegistryOp.SET_VALUE,
    "registryvaluerenamed": RegistryOp.RENAME,  # not in the docs' list, but seen in exports
}


def _registry(record: Mapping[str, Any], origin: Origin) -> Event:
    """`RegistryKey` (+ `RegistryValueName` for value actions), `RegistryValueData`; a
    rename's old name is in `PreviousRegistryKey` / `PreviousRegistryValueName`."""
    base = _base(record, origin)
    action = req_str(record, "ActionType")
    op = _REGISTRY_ACTIONS[action.lower()]
    key = normalise_registry_path(req_str(record, "RegistryKey"))
    value = opt_str(record, "RegistryValueName")
    is_value = "value" in action.lower()
    path = _join_key(key, value) if is_value else key
    new_name = None
    if op is RegistryOp.RENAME:
        # the row names the new key (or value); the facts name the old one as the target
        old_key = opt_str(record, "PreviousRegistryKey")
        old = normalise_registry_path(old_key) if old_key else key
        if is_value:
            old = _join_key(old, opt_str(record, "PreviousRegistryValueName"))
        path, new_name = old, path
    facts = RegistryFacts(
        path=path,
        op=op,
        event_type=action,
        details=registry_details(
            opt_str(record, "RegistryValueType"), opt_str(record, "RegistryValueData")
        ),
        new_name=new_name,
    )
    return Event(
        kind=Kind.REGISTRY, process=_initiator(record, base["host"]), registry=facts, **base
    )


def _join_key(key: str, value: str | None) -> str:
    return key.rstrip("\\") + "\\" + value if value else key


def _loaded(record: Mapping[str, Any]) -> ImageLoadFacts:
    path = _path(record, "FolderPath", "FileName")
    if path is None:
        raise ParseError("FolderPath", "missing, and no FileName either")
    facts = ImageFacts(
        md5=normalise_hash("md5", opt_str(record, "MD5")),
        sha1=normalise_hash("sha1", opt_str(record, "SHA1")),
        sha256=normalise_hash("sha256", opt_str(record, "SHA256")),
    )
    return ImageLoadFacts(path, facts if facts.present() else None)


def _image_load(record: Mapping[str, Any], origin: Origin) -> Event:
    """DeviceImageLoadEvents: the module is FolderPath/FileName with its hashes."""
    base = _base(record, origin)
    return Event(
        kind=Kind.IMAGE_LOAD,
        process=_initiator(record, base["host"]),
        image_load=_loaded(record),
        **base,
    )


def _driver_load(record: Mapping[str, Any], origin: Origin) -> Event:
    """DeviceEvents DriverLoad: the driver is FolderPath/FileName; like Sysmon 6, no process
    is the actor (the row's initiator is the kernel's System process)."""
    base = _base(record, origin)
    return Event(kind=Kind.DRIVER_LOAD, process=None, image_load=_loaded(record), **base)


def _additional(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """`AdditionalFields`: a JSON object, or its text (CSV and some JSON exports)."""
    value = record.get("AdditionalFields")
    if value in (None, ""):
        return {}
    if isinstance(value, Mapping):
        return value
    try:
        parsed = json.loads(str(value))
    except ValueError:
        raise ParseError("AdditionalFields", "not a JSON object") from None
    if not isinstance(parsed, Mapping):
        raise ParseError("AdditionalFields", "not a JSON object")
    return parsed


def _target_process(record: Mapping[str, Any], host: str) -> ProcessRef:
    """The process a DeviceEvents API call acted on: the row's Process* / FileName columns."""
    user = join_user(opt_str(record, "AccountDomain"), opt_str(record, "AccountName"))
    return _process(record, "", host, user, facts=False)


def _access_mask(value: Any) -> str | None:
    if value in (None, ""):
        return None
    try:
        number = int(value) if not isinstance(value, str) else int(value, 0)
    except ValueError:
        raise ParseError("AdditionalFields.DesiredAccess", f"not a number: {value!r}") from None
    return hex(number)


def _api_call(record: Mapping[str, Any], origin: Origin) -> Event:
    """OpenProcessApiCall (a handle: ACCESSED, AdditionalFields.DesiredAccess) and the
    remote-thread and remote-memory calls (INJECTED, named by their ActionType)."""
    base = _base(record, origin)
    action = req_str(record, "ActionType")
    target = _target_process(record, base["host"])
    if action.lower() == "openprocessapicall":
        desired = _additional(record).get("DesiredAccess")
        access = ProcessAccessFacts(target=target, granted_access=_access_mask(desired))
        kind = Kind.PROCESS_ACCESS
    else:
        access = ProcessAccessFacts(target=target, action=action)
        kind = Kind.REMOTE_THREAD
    return Event(kind=kind, process=_initiator(record, base["host"]), access=access, **base)


def _named_pipe(record: Mapping[str, Any], origin: Origin) -> Event:
    """NamedPipeEvent: AdditionalFields.PipeName; the server end (NamedPipeEnd "Server", or
    FileOperation "File created") creates it, a client opens it."""
    base = _base(record, origin)
    extra = _additional(record)
    name = extra.get("PipeName")
    if not isinstance(name, str) or not name:
        raise ParseError("AdditionalFields.PipeName", "missing")
    end = str(extra.get("NamedPipeEnd") or "").lower()
    operation = str(extra.get("FileOperation") or "").lower()
    created = end == "server" or (not end and "create" in operation)
    # Defender names the pipe by its device path; Sysmon as \name: one node for both
    short = re.sub(r"(?i)^\\device\\namedpipe", "", name) or name
    return Event(
        kind=Kind.PIPE,
        process=_initiator(record, base["host"]),
        pipe=PipeFacts(short, created),
        **base,
    )


# DeviceEvents action types that say what one process did to another
_INJECTION_ACTIONS = (
    "createremotethreadapicall",
    "queueuserapcremoteapicall",
    "setthreadcontextremoteapicall",
    "writeprocessmemoryapicall",
    "ntallocatevirtualmemoryremoteapicall",
    "ntmapviewofsectionremoteapicall",
    "readprocessmemoryapicall",
)
K1_ACTIONS = {
    **{action: _registry for action in _REGISTRY_ACTIONS},
    "imageloaded": _image_load,
    "driverload": _driver_load,
    "openprocessapicall": _api_call,
    **{action: _api_call for action in _INJECTION_ACTIONS},
    "namedpipeevent": _named_pipe,
}


# ---- DeviceLogonEvents (graph v2, accounts part 2) -------------------------------------------
# ActionType -> failed? LogonAttempted says an attempt was seen without its outcome: it is
# neither a session nor a failure, so it is skipped with that reason.
_LOGONS = {"logonsuccess": False, "logonfailed": True}
_UNKNOWN_OUTCOME = "logonattempted"


def _logon(record: Mapping[str, Any], failed: bool, origin: Origin) -> list[Event]:
    """A DeviceLogonEvents row: `AccountSid`/`AccountDomain`/`AccountName` logged on (or
    failed to) with `LogonType` (a name, kept as its Windows number) and `LogonId` (decimal,
    kept as Security's hex), from `RemoteIP`/`RemotePort`/`RemoteDeviceName`, by `Protocol`.
    `IsLocalAdmin` is kept as `elevated`. The initiating process (lsass, svchost, winlogon:
    the authenticator, not a process of the session) is not a process of the logon."""
    base = _base(record, origin)
    account = account_ref(
        as_sid(record.get("AccountSid")),
        opt_str(record, "AccountDomain"),
        opt_str(record, "AccountName"),
    )
    if account is None:
        raise ParseError("AccountName", "missing, and no AccountSid either")
    logon_id = logon_id_hex(record.get("LogonId"))
    if not failed and logon_id is None:
        raise ParseError("LogonId", "missing")
    logon_type = record.get("LogonType")
    facts = LogonFacts(
        account=account,
        logon_id=logon_id,
        logon_type=logon_type_number(logon_type) if logon_type not in (None, "") else None,
        failed=failed,
        failure_reason=opt_str(record, "FailureReason") if failed else None,
        source_ip=_remote_ip(record),
        source_port=_remote_port(record),
        workstation=_remote_device(record),
        auth_package=opt_str(record, "Protocol"),
        elevated=_flag(record.get("IsLocalAdmin")),
    )
    return [Event(kind=Kind.LOGON, process=None, logon=facts, **base)]


def _remote_ip(record: Mapping[str, Any]) -> str | None:
    value = opt_str(record, "RemoteIP")
    if value is None or value.strip() in ("-", "::1", "127.0.0.1"):
        return None  # a local logon names the loopback, or nothing
    try:
        return opt_ip(record, "RemoteIP")
    except ParseError:
        return None  # a name where an address was expected: not an address


def _remote_port(record: Mapping[str, Any]) -> int | None:
    value = record.get("RemotePort")
    if value in (None, "", 0, "0"):
        return None
    return opt_port(record, "RemotePort")


def _remote_device(record: Mapping[str, Any]) -> str | None:
    value = opt_str(record, "RemoteDeviceName")
    return None if value is None or value.strip() in ("", "-") else value.strip()


def _flag(value: Any) -> bool | None:
    """Booleans as exports write them: true/false, 1/0, "True"/"1"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    return None

"""Sysmon (Windows, and Linux via `sysmon_linux`) to normalised events.

Accepts every wrapping `winevent.unwrap` knows. Process identity is the ProcessGuid; Mordor
rows lack ProcessId altogether (NXLog drops it), so nothing here needs the pid.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provgraph.ingest.errors import ParseError, Skipped
from provgraph.ingest.fields import (
    as_ip,
    as_port,
    as_str,
    as_time,
    opt_pid,
    opt_str,
    req,
    req_str,
)
from provgraph.ingest.model import (
    Event,
    FileOp,
    ImageFacts,
    ImageLoadFacts,
    Kind,
    Origin,
    PipeFacts,
    ProcessAccessFacts,
    ProcessRef,
    RegistryFacts,
    RegistryOp,
    SystemFacts,
    WmiFacts,
    WmiKind,
    integrity_level,
    normalise_hash,
    normalise_registry_path,
    process_uid,
)
from provgraph.ingest.winevent import SYSMON_PROVIDERS, WinRecord, host_of, unwrap

# Sysmon for Linux logs GUIDs whose process part is zero for processes it could not resolve
# (e.g. {94325212-fc0e-627b-0000-000000000000}); they are shared by unrelated processes, so
# they must not become an identity. All-zero is the same "unknown".
_PLACEHOLDER_GUID = re.compile(r"^\{?[0-9a-f-]*?-0000-0{12}\}?$", re.IGNORECASE)
_UNKNOWN_IMAGES = frozenset({"<unknown process>", "-"})
# The provider names the platform; a record without one (some NXLog rows) leaves it to the paths.
_OS_BY_PROVIDER = {"microsoft-windows-sysmon": "windows", "linux-sysmon": "linux"}


@dataclass(slots=True)
class _Ctx:
    host: str
    fqdn: str | None
    ts: datetime
    origin: Origin
    raw: Mapping[str, Any]
    os: str | None = None


def parse_sysmon(record: Mapping[str, Any], origin: Origin) -> list[Event]:
    win = unwrap(record)
    if win.provider and win.provider not in SYSMON_PROVIDERS:
        return Skipped(f"provider {win.provider} is not Sysmon")
    return from_winrecord(win, origin, dict(record))


def from_winrecord(win: WinRecord, origin: Origin, raw: dict[str, Any]) -> list[Event]:
    handler = _HANDLERS.get(win.event_id)
    if handler is None:
        return Skipped(f"sysmon EventID {win.event_id} not modelled")
    host, fqdn = host_of(win)
    ctx = _Ctx(
        host=host,
        fqdn=fqdn,
        ts=_event_time(win),
        origin=origin,
        raw=raw,
        os=_OS_BY_PROVIDER.get(win.provider or ""),
    )
    return [handler(win.data, ctx)]


def _event_time(win: WinRecord) -> datetime:
    # UtcTime is when Sysmon saw the event; the system/ingest time can lag by seconds
    utc = win.data.get("UtcTime")
    if utc not in (None, ""):
        return as_time(utc, "UtcTime", naive_is_utc=True)
    if win.time in (None, ""):
        raise ParseError("UtcTime", "missing, and no system time either")
    return as_time(win.time, win.time_field)


def usable_guid(value: str) -> str | None:
    text = value.strip()
    if not text or text == "-" or _PLACEHOLDER_GUID.match(text):
        return None
    return text


def _uid(guid: str | None, pid: int | None, ctx: _Ctx, field: str, start: datetime | None) -> str:
    guid = usable_guid(guid) if guid else None
    if guid:
        return process_uid(host=ctx.host, guid=guid)
    if pid is None:
        raise ParseError(field, "no usable process GUID and no pid")
    return process_uid(host=ctx.host, pid=pid, start_time=start)


def _image(data: Mapping[str, Any], key: str) -> str | None:
    image = opt_str(data, key)
    return None if image is None or image.strip() in _UNKNOWN_IMAGES else image


def _actor(data: Mapping[str, Any], ctx: _Ctx) -> ProcessRef:
    """The process acting in a file/network/dns/end event."""
    pid = opt_pid(data, "ProcessId")
    return ProcessRef(
        uid=_uid(as_str(req(data, "ProcessGuid"), "ProcessGuid"), pid, ctx, "ProcessGuid", None),
        pid=pid,
        image=_image(data, "Image"),
        user=opt_str(data, "User"),
    )


def _event(kind: Kind, process: ProcessRef, ctx: _Ctx, **target: Any) -> Event:
    return Event(
        kind=kind,
        ts=ctx.ts,
        host=ctx.host,
        host_fqdn=ctx.fqdn,
        os=ctx.os,
        process=process,
        origin=ctx.origin,
        raw=dict(ctx.raw),
        **target,
    )


def _process_start(data: Mapping[str, Any], ctx: _Ctx) -> Event:
    pid = opt_pid(data, "ProcessId")
    process = ProcessRef(
        uid=_uid(req_str(data, "ProcessGuid"), pid, ctx, "ProcessGuid", ctx.ts),
        pid=pid,
        image=req_str(data, "Image"),
        command_line=opt_str(data, "CommandLine"),
        user=opt_str(data, "User"),
        start_time=ctx.ts,
        logon_id=_lower(opt_str(data, "LogonId")),
        integrity_level=integrity_level(opt_str(data, "IntegrityLevel")),
        current_directory=_fact(data, "CurrentDirectory"),
        image_facts=image_facts(data),
    )
    return _event(Kind.PROCESS_START, process, ctx, parent=_parent(data, ctx))


_HASH_NAMES = {"md5": "md5", "sha1": "sha1", "sha256": "sha256", "imphash": "imphash"}


def image_facts(data: Mapping[str, Any]) -> ImageFacts | None:
    """Sysmon's PE version fields and `Hashes` ("SHA1=…,MD5=…,SHA256=…,IMPHASH=…", whichever
    algorithms the configuration asks for). Shared by process creation and the image and
    driver loads, which log the same fields (plus the signature)."""
    facts = ImageFacts(
        original_file_name=_fact(data, "OriginalFileName"),
        company=_fact(data, "Company"),
        product=_fact(data, "Product"),
        description=_fact(data, "Description"),
        file_version=_fact(data, "FileVersion"),
        signer=_fact(data, "Signature"),
        signature_status=_fact(data, "SignatureStatus"),
    )
    signed = data.get("Signed")
    if signed not in (None, "", "-"):
        facts.signed = _flag(signed, "Signed", default=False)
    for part in (opt_str(data, "Hashes") or "").split(","):
        name, _, value = part.partition("=")
        kind = _HASH_NAMES.get(name.strip().lower())
        if kind:
            setattr(facts, kind, normalise_hash(kind, value))
    return facts if facts.present() else None


def _fact(data: Mapping[str, Any], key: str) -> str | None:
    value = opt_str(data, key)
    return None if value is None or value.strip() in ("?", "") else value.strip()


def _parent(data: Mapping[str, Any], ctx: _Ctx) -> ProcessRef | None:
    guid = usable_guid(opt_str(data, "ParentProcessGuid") or "")
    pid = opt_pid(data, "ParentProcessId")
    if guid is None and pid is None:
        return None  # Sysmon for Linux logs "-" for a parent it never saw
    return ProcessRef(
        uid=_uid(guid, pid, ctx, "ParentProcessGuid", None),
        pid=pid,
        image=_image(data, "ParentImage"),
        command_line=opt_str(data, "ParentCommandLine"),
        user=opt_str(data, "ParentUser"),
    )


def _lower(value: str | None) -> str | None:
    return value.lower() if value else None


def _process_end(data: Mapping[str, Any], ctx: _Ctx) -> Event:
    return _event(Kind.PROCESS_END, _actor(data, ctx), ctx)


def _file_create(data: Mapping[str, Any], ctx: _Ctx) -> Event:
    path = req_str(data, "TargetFilename")
    return _event(Kind.FILE_WRITE, _actor(data, ctx), ctx, file_path=path, file_op=FileOp.CREATE)


def _network(data: Mapping[str, Any], ctx: _Ctx) -> Event:
    # for an accepted connection Sysmon keeps Source = the peer that initiated it
    outbound = _flag(data.get("Initiated"), "Initiated", default=True)
    remote, local = ("Destination", "Source") if outbound else ("Source", "Destination")
    protocol = opt_str(data, "Protocol")
    return _event(
        Kind.NETWORK_CONNECT,
        _actor(data, ctx),
        ctx,
        remote_ip=as_ip(req(data, remote + "Ip"), remote + "Ip"),
        remote_port=as_port(req(data, remote + "Port"), remote + "Port"),
        remote_hostname=opt_str(data, remote + "Hostname"),
        local_ip=_opt(data, local + "Ip", as_ip),
        local_port=_opt(data, local + "Port", as_port),
        protocol=protocol.lower() if protocol else None,
        direction="outbound" if outbound else "inbound",
    )


def _opt(data: Mapping[str, Any], key: str, read: Callable[[Any, str], Any]) -> Any:
    value = data.get(key)
    return None if value in (None, "", "-") else read(value, key)


def _flag(value: Any, field: str, *, default: bool) -> bool:
    if value in (None, "", "-"):
        return default
    if isinstance(value, bool):
        return value
    text = as_str(value, field).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ParseError(field, f"not a boolean: {text[:20]!r}")


def _dns(data: Mapping[str, Any], ctx: _Ctx) -> Event:
    results = opt_str(data, "QueryResults") or ""
    answers = tuple(r.strip().removeprefix("::ffff:") for r in results.split(";") if r.strip())
    return _event(
        Kind.DNS_QUERY,
        _actor(data, ctx),
        ctx,
        query_name=req_str(data, "QueryName"),
        query_results=answers,
    )


# -- k1: what a process does to the system (Sysmon 2, 6-10, 12-15, 17-21, 23-29) ------------
def _file_event(op: FileOp) -> Callable[[Mapping[str, Any], _Ctx], Event]:
    """Sysmon 2, 15, 23, 26-29: a file event kept on WROTE with its op; `Hashes` (or 15's
    `Hash`: of the stream) are the named file's, 15's `Contents` the stream's text."""

    def handle(data: Mapping[str, Any], ctx: _Ctx) -> Event:
        path = req_str(data, "TargetFilename")
        hashes = _hashes(opt_str(data, "Hashes") or opt_str(data, "Hash"))
        contents = opt_str(data, "Contents") if op is FileOp.STREAM else None
        if contents is not None and contents.strip() in ("", "-"):
            contents = None
        facts = None
        if hashes is not None or contents is not None:
            facts = SystemFacts(hashes=hashes, contents=contents)
        return _event(
            Kind.FILE_WRITE, _actor(data, ctx), ctx, file_path=path, file_op=op, system=facts
        )

    return handle


def _hashes(text: str | None) -> ImageFacts | None:
    if not text:
        return None
    facts = ImageFacts()
    for part in text.split(","):
        name, _, value = part.partition("=")
        kind = _HASH_NAMES.get(name.strip().lower())
        if kind:
            setattr(facts, kind, normalise_hash(kind, value))
    return facts if facts.present() else None


def _driver_load(data: Mapping[str, Any], ctx: _Ctx) -> Event:
    """Sysmon 6: no process is named (the kernel loaded it)."""
    return Event(
        kind=Kind.DRIVER_LOAD,
        ts=ctx.ts,
        host=ctx.host,
        host_fqdn=ctx.fqdn,
        process=None,
        origin=ctx.origin,
        raw=dict(ctx.raw),
        image_load=ImageLoadFacts(req_str(data, "ImageLoaded"), image_facts(data)),
    )


def _image_load(data: Mapping[str, Any], ctx: _Ctx) -> Event:
    load = ImageLoadFacts(req_str(data, "ImageLoaded"), image_facts(data))
    return _event(Kind.IMAGE_LOAD, _actor(data, ctx), ctx, image_load=load)


def _either(data: Mapping[str, Any], *keys: str) -> tuple[str, Any]:
    """Sysmon spells some names two ways (10: SourceProcessGUID, 8: SourceProcessGuid)."""
    for key in keys:
        if data.get(key) not in (None, ""):
            return key, data[key]
    raise ParseError(keys[0], "missing")


def _side(data: Mapping[str, Any], ctx: _Ctx, side: str) -> ProcessRef:
    """Source or target process of Sysmon 8 and 10."""
    field, guid = _either(data, side + "ProcessGuid", side + "ProcessGUID")
    pid = opt_pid(data, side + "ProcessId")
    return ProcessRef(
        uid=_uid(as_str(guid, field), pid, ctx, field, None),
        pid=pid,
        image=_image(data, side + "Image"),
        user=opt_str(data, side + "User"),
    )


def _hex(value: str | None, field: str) -> str | None:
    if value is None or value.strip() in ("", "-"):
        return None
    text = value.strip().lower()
    try:
        return hex(int(text, 16))
    except ValueError:
        raise ParseError(field, f"not a hex number: {text[:20]!r}") from None


def _process_access(data: Mapping[str, Any], ctx: _Ctx) -> Event:
    access = ProcessAccessFacts(
        target=_side(data, ctx, "Target"),
        granted_access=_hex(opt_str(data, "GrantedAccess"), "GrantedAccess"),
        call_trace=opt_str(data, "CallTrace"),
    )
    return _event(Kind.PROCESS_ACCESS, _side(data, ctx, "Source"), ctx, access=access)


def _remote_thread(data: Mapping[str, Any], ctx: _Ctx) -> Event:
    access = ProcessAccessFacts(
        target=_side(data, ctx, "Target"),
        start_address=_hex(opt_str(data, "StartAddress"), "StartAddress"),
        start_module=_fact(data, "StartModule"),
        start_function=_fact(data, "StartFunction"),
    )
    return _event(Kind.REMOTE_THREAD, _side(data, ctx, "Source"), ctx, access=access)


def _raw_read(data: Mapping[str, Any], ctx: _Ctx) -> Event:
    device = req_str(data, "Device")
    return _event(Kind.RAW_READ, _actor(data, ctx), ctx, system=SystemFacts(device=device))


# Sysmon 12-14 EventType; NXLog (the Mordor sets) overwrites it with its own "INFO", so an
# event id alone says set (13) or rename (14), and for 12 only "created or deleted".
_REGISTRY_TYPES = {
    "createkey": RegistryOp.CREATE,
    "deletekey": RegistryOp.DELETE,
    "deletevalue": RegistryOp.DELETE,
    "setvalue": RegistryOp.SET_VALUE,
    "renamekey": RegistryOp.RENAME,
}
_REGISTRY_IDS = {12: RegistryOp.CREATE_OR_DELETE, 13: RegistryOp.SET_VALUE, 14: RegistryOp.RENAME}


def _registry(event_id: int) -> Callable[[Mapping[str, Any], _Ctx], Event]:
    def handle(data: Mapping[str, Any], ctx: _Ctx) -> Event:
        event_type = opt_str(data, "EventType")
        op = _REGISTRY_TYPES.get((event_type or "").lower())
        if op is None:
            event_type, op = None, _REGISTRY_IDS[event_id]
        new_name = opt_str(data, "NewName")
        facts = RegistryFacts(
            path=normalise_registry_path(req_str(data, "TargetObject")),
            op=op,
            event_type=event_type,
            details=opt_str(data, "Details"),
            new_name=normalise_registry_path(new_name) if new_name else None,
        )
        return _event(Kind.REGISTRY, _actor(data, ctx), ctx, registry=facts)

    return handle


def _pipe(created: bool) -> Callable[[Mapping[str, Any], _Ctx], Event]:
    def handle(data: Mapping[str, Any], ctx: _Ctx) -> Event:
        pipe = PipeFacts(req_str(data, "PipeName"), created)
        return _event(Kind.PIPE, _actor(data, ctx), ctx, pipe=pipe)

    return handle


# `…Consumer.Name=\"x\"`: Sysmon escapes the quotes inside its quoted value
_WMI_NAME = re.compile(r'Name\s*=\s*\\?"(.*?)\\?"', re.IGNORECASE)


def _unquote(value: str | None) -> str | None:
    """Sysmon quotes WMI names, namespaces and queries: "\"BotFilter82\""."""
    if value is None:
        return None
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return text or None


def _wmi_name(value: str | None) -> str | None:
    """A binding names its parts by path (`\\\\.\\root\\subscription:__EventFilter.Name="x"`)."""
    if value is None:
        return None
    found = _WMI_NAME.search(value)
    return found.group(1) if found else _unquote(value)


def _wmi(kind: WmiKind) -> Callable[[Mapping[str, Any], _Ctx], Event]:
    """Sysmon 19/20/21: logged by the WMI service for whoever registered them; no process."""

    def handle(data: Mapping[str, Any], ctx: _Ctx) -> Event:
        facts = WmiFacts(
            kind=kind, operation=opt_str(data, "Operation"), user=opt_str(data, "User")
        )
        if kind is WmiKind.BINDING:
            facts.filter = _wmi_name(req_str(data, "Filter"))
            facts.consumer = _wmi_name(req_str(data, "Consumer"))
        else:
            facts.name = _unquote(req_str(data, "Name"))
            facts.namespace = _unquote(opt_str(data, "EventNamespace"))
            facts.query = _unquote(opt_str(data, "Query"))
            facts.consumer_type = _unquote(opt_str(data, "Type"))
            facts.destination = _unquote(opt_str(data, "Destination"))
        return Event(
            kind=Kind.WMI,
            ts=ctx.ts,
            host=ctx.host,
            host_fqdn=ctx.fqdn,
            process=None,
            origin=ctx.origin,
            raw=dict(ctx.raw),
            wmi=facts,
        )

    return handle


def _clipboard(data: Mapping[str, Any], ctx: _Ctx) -> Event:
    facts = SystemFacts(clipboard_hashes=opt_str(data, "Hashes"))
    return _event(Kind.CLIPBOARD, _actor(data, ctx), ctx, system=facts)


def _tampering(data: Mapping[str, Any], ctx: _Ctx) -> Event:
    facts = SystemFacts(tamper_type=opt_str(data, "Type"))
    return _event(Kind.TAMPERING, _actor(data, ctx), ctx, system=facts)


_HANDLERS: dict[int, Callable[[Mapping[str, Any], _Ctx], Event]] = {
    1: _process_start,
    2: _file_event(FileOp.TIME_CHANGE),
    3: _network,
    5: _process_end,
    6: _driver_load,
    7: _image_load,
    8: _remote_thread,
    9: _raw_read,
    10: _process_access,
    11: _file_create,
    12: _registry(12),
    13: _registry(13),
    14: _registry(14),
    15: _file_event(FileOp.STREAM),
    17: _pipe(True),
    18: _pipe(False),
    19: _wmi(WmiKind.FILTER),
    20: _wmi(WmiKind.CONSUMER),
    21: _wmi(WmiKind.BINDING),
    22: _dns,
    23: _file_event(FileOp.DELETE),
    24: _clipboard,
    25: _tampering,
    26: _file_event(FileOp.DELETE),
    27: _file_event(FileOp.BLOCKED_EXE),
    28: _file_event(FileOp.BLOCKED_SHRED),
    29: _file_event(FileOp.EXE_DETECTED),
}

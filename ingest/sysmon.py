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
    host_names,
    opt_pid,
    opt_str,
    req,
    req_str,
)
from provgraph.ingest.model import (
    Event,
    FileOp,
    ImageFacts,
    Kind,
    Origin,
    ProcessRef,
    normalise_hash,
    process_uid,
)
from provgraph.ingest.winevent import SYSMON_PROVIDERS, WinRecord, unwrap

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
    host, fqdn = host_names(req_host(win), win.computer_field)
    ctx = _Ctx(
        host=host,
        fqdn=fqdn,
        ts=_event_time(win),
        origin=origin,
        raw=raw,
        os=_OS_BY_PROVIDER.get(win.provider or ""),
    )
    return [handler(win.data, ctx)]


def req_host(win: WinRecord) -> Any:
    if win.computer in (None, ""):
        raise ParseError(win.computer_field, "missing")
    return win.computer


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
        integrity=opt_str(data, "IntegrityLevel"),
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


def _file_delete(data: Mapping[str, Any], ctx: _Ctx) -> Event:
    path = req_str(data, "TargetFilename")
    return _event(Kind.FILE_WRITE, _actor(data, ctx), ctx, file_path=path, file_op=FileOp.DELETE)


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


_HANDLERS: dict[int, Callable[[Mapping[str, Any], _Ctx], Event]] = {
    1: _process_start,
    3: _network,
    5: _process_end,
    11: _file_create,
    22: _dns,
    23: _file_delete,
    26: _file_delete,
}

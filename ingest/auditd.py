"""Linux auditd to normalised events.

API difference: one audit event spans several lines (SYSCALL, EXECVE, CWD, PATH, SOCKADDR,
PROCTITLE, EOE) sharing a serial, so this parser takes an iterator of numbered lines and
yields one `AuditResult` per event (its origin line is the event's first line), instead of
mapping one record at a time like the JSON sources.

Identity: a process is host + pid (+ the exec time for the process an execve starts); the
parent and the actors of connect/open are host + pid only, resolved by `graph`. Host: the
`node=` prefix when logged, else the caller's `default_host`.
"""

from __future__ import annotations

import os.path
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import NamedTuple

from provgraph.ingest.auditd_records import AuditRecord, as_number, decode_text, parse_line
from provgraph.ingest.errors import ParseError, Skipped
from provgraph.ingest.fields import host_names
from provgraph.ingest.model import Event, FileOp, Kind, Origin, ProcessRef, process_uid
from provgraph.ingest.sockaddr import decode_sockaddr

# events are normally contiguous; a few may interleave, so keep a small window open
_MAX_OPEN_EVENTS = 32
_EINPROGRESS = -115  # a non-blocking connect "fails" with this and then succeeds
_WRITE_FLAGS = 0o1 | 0o2 | 0o100 | 0o1000 | 0o2000  # WRONLY RDWR CREAT TRUNC APPEND
_SYSCALLS = {
    "c000003e": {
        59: "execve",
        322: "execveat",
        42: "connect",
        43: "accept",
        288: "accept4",
        2: "open",
        257: "openat",
        85: "creat",
        82: "rename",
        264: "renameat",
        316: "renameat2",
        87: "unlink",
        263: "unlinkat",
    },  # x86_64
    "c00000b7": {
        221: "execve",
        281: "execveat",
        203: "connect",
        202: "accept",
        242: "accept4",
        56: "openat",
        38: "renameat",
        276: "renameat2",
        35: "unlinkat",
    },  # aarch64
    "40000003": {
        11: "execve",
        358: "execveat",
        362: "connect",
        364: "accept4",
        5: "open",
        295: "openat",
        8: "creat",
        38: "rename",
        302: "renameat",
        10: "unlink",
        301: "unlinkat",
    },  # i386
}


class AuditResult(NamedTuple):
    origin: Origin
    events: list[Event] | None  # None when `error` is set
    error: ParseError | None
    raw: str  # the event's lines, newline-joined


def parse_auditd(
    lines: Iterable[tuple[int, str]], path: str, *, default_host: str = "unknown"
) -> Iterator[AuditResult]:
    pending: OrderedDict[int, list[AuditRecord]] = OrderedDict()
    for number, text in lines:
        if not text.strip():
            continue
        try:
            record = parse_line(text.rstrip("\r\n"), number)
        except ParseError as error:
            yield AuditResult(Origin("auditd", path, number), None, error, text)
            continue
        pending.setdefault(record.serial, []).append(record)
        if record.type == "EOE":
            yield _result(pending.pop(record.serial), path, default_host)
        while len(pending) > _MAX_OPEN_EVENTS:
            yield _result(pending.popitem(last=False)[1], path, default_host)
    for records in pending.values():
        yield _result(records, path, default_host)


def _result(records: list[AuditRecord], path: str, default_host: str) -> AuditResult:
    origin = Origin("auditd", path, records[0].line)
    raw = "\n".join(r.raw for r in records)
    try:
        return AuditResult(origin, map_event(records, origin, default_host), None, raw)
    except ParseError as error:
        return AuditResult(origin, None, error, raw)


def map_event(records: list[AuditRecord], origin: Origin, default_host: str) -> list[Event]:
    by_type: dict[str, list[AuditRecord]] = {}
    for record in records:
        by_type.setdefault(record.type, []).append(record)
    if "SYSCALL" not in by_type:
        return Skipped(f"auditd {records[0].type} record not modelled")
    syscall = by_type["SYSCALL"][0]
    name = _syscall_name(syscall)
    handler = _HANDLERS.get(name)
    if handler is None:
        return Skipped(f"auditd syscall {name} not modelled")
    if not _succeeded(syscall, name):
        return Skipped(f"auditd {name} failed")
    host, fqdn = host_names(syscall.node or default_host, "node")
    ts = datetime.fromtimestamp(syscall.ts, tz=UTC)
    base = {
        "ts": ts,
        "host": host,
        "host_fqdn": fqdn,
        "os": "linux",
        "origin": origin,
        "raw": {"records": [r.raw for r in records]},
    }
    return handler(name, syscall, by_type, base)


def _syscall_name(syscall: AuditRecord) -> str:
    named = syscall.interpreted.get("SYSCALL") or ""
    if named and not named.isdigit():
        return named
    number = as_number(syscall, "syscall")
    arch = syscall.fields.get("arch", "").lower()
    return _SYSCALLS.get(arch, {}).get(number, f"{number} (arch {arch or '?'})")


def _succeeded(syscall: AuditRecord, name: str) -> bool:
    if syscall.fields.get("success") == "yes":
        return True
    exit_code = syscall.fields.get("exit", "")
    return name == "connect" and exit_code.lstrip("-").isdigit() and int(exit_code) == _EINPROGRESS


def _user(syscall: AuditRecord) -> str | None:
    return decode_text(syscall.interpreted.get("UID")) or syscall.fields.get("uid")


def _session(syscall: AuditRecord) -> str | None:
    session = syscall.fields.get("ses")
    return None if session in (None, "4294967295") else session  # -1: no login session


def _proctitle(by_type: dict[str, list[AuditRecord]]) -> str | None:
    titles = by_type.get("PROCTITLE")
    if not titles:
        return None
    title = decode_text(titles[0].fields.get("proctitle"))
    return title.replace("\x00", " ").strip() if title else None


def _actor(syscall: AuditRecord, by_type: dict[str, list[AuditRecord]], host: str) -> ProcessRef:
    pid = as_number(syscall, "pid")
    return ProcessRef(
        uid=process_uid(host=host, pid=pid),
        pid=pid,
        image=decode_text(syscall.fields.get("exe")),
        command_line=_proctitle(by_type),
        user=_user(syscall),
        logon_id=_session(syscall),
    )


def _argv(by_type: dict[str, list[AuditRecord]]) -> list[str]:
    """EXECVE a0..a(argc-1); a long argument is split as aN_len=.. aN[0]=.. aN[1]=.."""
    execve = by_type.get("EXECVE")
    if not execve:
        return []
    fields: dict[str, str] = {}
    for record in execve:  # very long argument lists continue on further EXECVE records
        fields.update(record.fields)
    argc = as_number(execve[0], "argc")
    args = []
    for i in range(min(argc, 4096)):
        if f"a{i}" in fields:
            args.append(decode_text(fields[f"a{i}"]) or "")
        else:
            chunks = [
                decode_text(fields.get(f"a{i}[{j}]")) or "" for j in range(_chunks(fields, i))
            ]
            args.append("".join(chunks))
    return args


def _chunks(fields: dict[str, str], index: int) -> int:
    count = 0
    while f"a{index}[{count}]" in fields:
        count += 1
    return count


def _exec(name: str, syscall: AuditRecord, by_type: dict, base: dict) -> list[Event]:
    host, ts = base["host"], base["ts"]
    pid, ppid = as_number(syscall, "pid"), as_number(syscall, "ppid")
    argv = _argv(by_type)
    process = ProcessRef(
        uid=process_uid(host=host, pid=pid, start_time=ts),
        pid=pid,
        image=decode_text(syscall.fields.get("exe")),
        command_line=" ".join(argv) if argv else _proctitle(by_type),
        user=_user(syscall),
        start_time=ts,
        logon_id=_session(syscall),
    )
    if process.image is None:
        raise ParseError("SYSCALL.exe", "missing")
    parent = ProcessRef(uid=process_uid(host=host, pid=ppid), pid=ppid)
    return [Event(kind=Kind.PROCESS_START, process=process, parent=parent, **base)]


def _connect(name: str, syscall: AuditRecord, by_type: dict, base: dict) -> list[Event]:
    """connect: SOCKADDR is the address connected to; accept/accept4: the peer that connected
    (auditd logs no local address, so the listening port is unknown)."""
    inbound = name != "connect"
    sockaddrs = by_type.get("SOCKADDR")
    if not sockaddrs:
        return Skipped(f"auditd {name} without SOCKADDR")
    address = decode_sockaddr(sockaddrs[0].fields.get("saddr"))
    if address is None:
        return Skipped(f"auditd {name} on a non-IP socket")
    ip, port = address
    actor = _actor(syscall, by_type, base["host"])
    return [
        Event(
            kind=Kind.NETWORK_CONNECT,
            process=actor,
            remote_ip=ip,
            remote_port=port,
            direction="inbound" if inbound else "outbound",
            **base,
        )
    ]


def _paths(by_type: dict[str, list[AuditRecord]], nametype: str) -> list[str]:
    cwd_records = by_type.get("CWD")
    cwd = decode_text(cwd_records[0].fields.get("cwd")) if cwd_records else None
    out = []
    for record in by_type.get("PATH", []):
        if record.fields.get("nametype") == nametype:
            name = decode_text(record.fields.get("name"))
            if name:
                out.append(os.path.join(cwd, name) if cwd and not name.startswith("/") else name)
    return out


def _file_event(syscall: AuditRecord, by_type: dict, base: dict, **target: object) -> list[Event]:
    actor = _actor(syscall, by_type, base["host"])
    return [Event(kind=Kind.FILE_WRITE, process=actor, **target, **base)]  # type: ignore[arg-type]


def _open(name: str, syscall: AuditRecord, by_type: dict, base: dict) -> list[Event]:
    if name != "creat":
        flags = as_number(syscall, "a2" if name == "openat" else "a1", base=16)
        if not flags & _WRITE_FLAGS:
            return Skipped(f"auditd {name} for reading")
    created = _paths(by_type, "CREATE")
    if created:
        return _file_event(syscall, by_type, base, file_path=created[-1], file_op=FileOp.CREATE)
    normal = _paths(by_type, "NORMAL")
    if not normal:
        return Skipped(f"auditd {name} without a PATH record")
    return _file_event(syscall, by_type, base, file_path=normal[-1], file_op=FileOp.MODIFY)


def _rename(name: str, syscall: AuditRecord, by_type: dict, base: dict) -> list[Event]:
    old, new = _paths(by_type, "DELETE"), _paths(by_type, "CREATE")
    if not new:
        return Skipped(f"auditd {name} without a CREATE PATH record")
    return _file_event(
        syscall,
        by_type,
        base,
        file_path=new[-1],
        file_op=FileOp.RENAME,
        previous_path=old[0] if old else None,
    )


def _unlink(name: str, syscall: AuditRecord, by_type: dict, base: dict) -> list[Event]:
    deleted = _paths(by_type, "DELETE")
    if not deleted:
        return Skipped(f"auditd {name} without a DELETE PATH record")
    return _file_event(syscall, by_type, base, file_path=deleted[-1], file_op=FileOp.DELETE)


_HANDLERS = {
    "execve": _exec,
    "execveat": _exec,
    "connect": _connect,
    "accept": _connect,
    "accept4": _connect,
    "open": _open,
    "openat": _open,
    "creat": _open,
    "rename": _rename,
    "renameat": _rename,
    "renameat2": _rename,
    "unlink": _unlink,
    "unlinkat": _unlink,
}

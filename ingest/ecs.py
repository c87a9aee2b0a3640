"""Elastic Common Schema (Elastic Defend endpoint, auditbeat, packetbeat-style NDJSON).

Kinds: process start/end, file writes, network connections, dns lookups, and (accounts,
part 2) authentication: logons, failed logons and logoffs (`_authentication`).

Fields are read nested (`{"process": {"entity_id": ..}}`) or dotted-flat
(`{"process.entity_id": ..}`), as exports produce both. Sysmon shipped by winlogbeat also
carries ECS fields, but `detect` routes it to the Windows parser, which reads the original
Sysmon fields from `winlog.event_data`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from provgraph.ingest.errors import ParseError, Skipped
from provgraph.ingest.fields import (
    as_ip,
    as_pid,
    as_port,
    as_sid,
    as_str,
    as_time,
    host_names,
    join_user,
    registry_details,
)
from provgraph.ingest.model import (
    Event,
    FileOp,
    ImageFacts,
    ImageLoadFacts,
    Kind,
    LogonFacts,
    Origin,
    ProcessRef,
    RegistryFacts,
    RegistryOp,
    account_ref,
    integrity_level,
    logon_id_hex,
    logon_type_number,
    normalise_hash,
    normalise_os,
    normalise_registry_path,
    process_uid,
)

_MISSING = object()
_FILE_OPS = {"creation": FileOp.CREATE, "change": FileOp.MODIFY, "deletion": FileOp.DELETE}
_OUTBOUND = {"outbound", "egress"}
_INBOUND = {"inbound", "ingress"}


def dig(record: Mapping[str, Any], dotted: str) -> Any:
    """A field by its ECS name, nested or flat; `_MISSING` when absent."""
    if dotted in record:
        return record[dotted]
    node: Any = record
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _opt(record: Mapping[str, Any], dotted: str) -> str | None:
    value = dig(record, dotted)
    if value is _MISSING or value in (None, ""):
        return None
    return as_str(value, dotted)


def _req(record: Mapping[str, Any], dotted: str) -> Any:
    value = dig(record, dotted)
    if value is _MISSING or value in (None, ""):
        raise ParseError(dotted, "missing")
    return value


def _keywords(record: Mapping[str, Any], dotted: str) -> set[str]:
    """event.category / event.type are keyword arrays, sometimes a single string."""
    value = dig(record, dotted)
    if value is _MISSING or value is None:
        return set()
    values = value if isinstance(value, list) else [value]
    return {as_str(v, dotted).lower() for v in values}


def parse_ecs(record: Mapping[str, Any], origin: Origin) -> list[Event]:
    if not isinstance(record, Mapping):
        raise ParseError(None, f"expected a JSON object, got {type(record).__name__}")
    categories = _keywords(record, "event.category")
    types = _keywords(record, "event.type")
    if not categories:
        raise ParseError("event.category", "missing")
    if "process" in categories:
        return _process(record, types, origin)
    if "authentication" in categories:
        return _authentication(record, types, origin)
    if "file" in categories:
        return _file(record, types, origin)
    if "network" in categories:
        return _network(record, types, origin)
    if "registry" in categories:
        return _registry(record, types, origin)
    if "library" in categories:
        return _library(record, types, origin)
    return Skipped(f"ecs event.category {sorted(categories)} not modelled")


def _base(record: Mapping[str, Any], origin: Origin) -> dict[str, Any]:
    name = dig(record, "host.name")
    field = "host.name"
    if name is _MISSING or name in (None, ""):
        name, field = _req(record, "host.hostname"), "host.hostname"
    host, fqdn = host_names(name, field)
    ts = as_time(_req(record, "@timestamp"), "@timestamp")
    os_name = _opt(record, "host.os.type") or _opt(record, "host.os.family")
    return {
        "ts": ts,
        "host": host,
        "host_fqdn": fqdn,
        "os": normalise_os(os_name),
        "origin": origin,
        "raw": dict(record),
    }


def _process_ref(
    record: Mapping[str, Any], prefix: str, host: str, start: datetime | None = None
) -> ProcessRef | None:
    """`process` or `process.parent`; None when neither entity id nor pid is logged.
    `start` stands in for a missing `<prefix>.start` (a start event's own time)."""
    entity = _opt(record, prefix + ".entity_id")
    pid_value = dig(record, prefix + ".pid")
    pid = None if pid_value in (_MISSING, None, "") else as_pid(pid_value, prefix + ".pid")
    start_value = _opt(record, prefix + ".start")
    start = as_time(start_value, prefix + ".start") if start_value else start
    if entity is None and pid is None:
        return None
    user = join_user(_opt(record, "user.domain"), _opt(record, "user.name"))
    own = prefix == "process"  # `user.*` and the session are the process's, not its parent's
    return ProcessRef(
        uid=process_uid(host=host, entity_id=entity, pid=pid, start_time=start),
        pid=pid,
        image=_opt(record, prefix + ".executable"),
        command_line=_opt(record, prefix + ".command_line"),
        user=user if own else None,
        start_time=start,
        image_facts=_image_facts(record, prefix),
        user_sid=as_sid(_opt(record, "user.id")) if own else None,
        logon_id=logon_id_hex(_opt(record, "process.Ext.authentication_id")) if own else None,
        integrity_level=integrity_level(_opt(record, prefix + ".Ext.token.integrity_level_name")),
        current_directory=_opt(record, prefix + ".working_directory"),
    )


def _image_facts(record: Mapping[str, Any], prefix: str) -> ImageFacts | None:
    """`<prefix>.pe.*`, `<prefix>.hash.*` and `<prefix>.code_signature.*` (Elastic Defend)."""
    pe, sig = prefix + ".pe.", prefix + ".code_signature."
    facts = ImageFacts(
        original_file_name=_opt(record, pe + "original_file_name"),
        company=_opt(record, pe + "company"),
        product=_opt(record, pe + "product"),
        description=_opt(record, pe + "description"),
        file_version=_opt(record, pe + "file_version"),
        imphash=normalise_hash("imphash", _opt(record, pe + "imphash")),
        md5=normalise_hash("md5", _opt(record, prefix + ".hash.md5")),
        sha1=normalise_hash("sha1", _opt(record, prefix + ".hash.sha1")),
        sha256=normalise_hash("sha256", _opt(record, prefix + ".hash.sha256")),
        signer=_opt(record, sig + "subject_name"),
        signature_status=_opt(record, sig + "status"),
        signed=_bool(record, sig + "exists"),
    )
    if facts.signature_status is None and (trusted := _bool(record, sig + "trusted")) is not None:
        facts.signature_status = "trusted" if trusted else "untrusted"
    return facts if facts.present() else None


def _bool(record: Mapping[str, Any], dotted: str) -> bool | None:
    value = dig(record, dotted)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _actor(record: Mapping[str, Any], host: str, start: datetime | None = None) -> ProcessRef:
    process = _process_ref(record, "process", host, start)
    if process is None:
        raise ParseError("process.entity_id", "missing, and no process.pid either")
    return process


def _process(record: Mapping[str, Any], types: set[str], origin: Origin) -> list[Event]:
    base = _base(record, origin)
    if "start" in types:
        # without process.start, the start event's own time is the start
        process = _actor(record, base["host"], base["ts"])
        parent = _process_ref(record, "process.parent", base["host"])
        return [Event(kind=Kind.PROCESS_START, process=process, parent=parent, **base)]
    if "end" in types:
        return [Event(kind=Kind.PROCESS_END, process=_actor(record, base["host"]), **base)]
    return Skipped(f"ecs process event.type {sorted(types)} not modelled")


def _file(record: Mapping[str, Any], types: set[str], origin: Origin) -> list[Event]:
    action = (_opt(record, "event.action") or "").lower()
    previous = _opt(record, "file.Ext.original.path")
    if "rename" in action or previous:
        op = FileOp.RENAME
    else:
        ops = [_FILE_OPS[t] for t in ("creation", "deletion", "change") if t in types]
        if not ops:
            return Skipped(f"ecs file event.type {sorted(types)} is not a write")
        op = ops[0]
    base = _base(record, origin)
    return [
        Event(
            kind=Kind.FILE_WRITE,
            process=_actor(record, base["host"]),
            file_path=as_str(_req(record, "file.path"), "file.path"),
            file_op=op,
            previous_path=previous,
            **base,
        )
    ]


def _network(record: Mapping[str, Any], types: set[str], origin: Origin) -> list[Event]:
    query = _opt(record, "dns.question.name")
    if query:
        return _dns(record, query, origin)
    base = _base(record, origin)
    if types and not types & {"start", "connection", "allowed", "protocol"}:
        return Skipped(f"ecs network event.type {sorted(types)} is not a connection")
    direction = (_opt(record, "network.direction") or "").lower()
    inbound = direction in _INBOUND
    remote, local = ("source", "destination") if inbound else ("destination", "source")
    transport = _opt(record, "network.transport")
    return [
        Event(
            kind=Kind.NETWORK_CONNECT,
            process=_actor(record, base["host"]),
            remote_ip=as_ip(_req(record, remote + ".ip"), remote + ".ip"),
            remote_port=as_port(_req(record, remote + ".port"), remote + ".port"),
            remote_hostname=_opt(record, remote + ".domain"),
            local_ip=_opt_read(record, local + ".ip", as_ip),
            local_port=_opt_read(record, local + ".port", as_port),
            protocol=transport.lower() if transport else None,
            direction="inbound" if inbound else ("outbound" if direction in _OUTBOUND else None),
            **base,
        )
    ]


# ---- dns (Elastic Defend network events with dns.*) -----------------------------------------
def _dns(record: Mapping[str, Any], query: str, origin: Origin) -> list[Event]:
    """A lookup by a process: `dns.question.name`, answers from `dns.resolved_ip` and
    `dns.answers[].data`. Elastic Defend logs each lookup twice, `lookup_requested` and then
    `lookup_result` (with the question again, the answers and the outcome): the request is
    skipped so one lookup counts once."""
    action = (_opt(record, "event.action") or "").lower()
    if action == "lookup_requested":
        return Skipped("ecs dns lookup_requested: its lookup_result carries the query")
    base = _base(record, origin)
    actor = _process_ref(record, "process", base["host"])
    if actor is None:  # packetbeat-style wire capture: no process to hang the query on
        return Skipped("ecs dns query with no process.entity_id or process.pid: not provenance")
    return [
        Event(
            kind=Kind.DNS_QUERY,
            process=actor,
            query_name=query,
            query_results=_dns_answers(record),
            **base,
        )
    ]


def _dns_answers(record: Mapping[str, Any]) -> tuple[str, ...]:
    found: list[str] = []
    resolved = dig(record, "dns.resolved_ip")
    answers = dig(record, "dns.answers")
    values = [] if resolved in (_MISSING, None) else _listed(resolved)
    for answer in [] if answers in (_MISSING, None) else _listed(answers):
        if isinstance(answer, Mapping):
            values.append(answer.get("data"))
    for value in values:
        if value in (None, ""):
            continue
        text = as_str(value, "dns.answers").strip().removeprefix("::ffff:")
        if text and text not in found:
            found.append(text)
    return tuple(found)


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _opt_read(record: Mapping[str, Any], dotted: str, read: Any) -> Any:
    value = dig(record, dotted)
    return None if value in (_MISSING, None, "") else read(value, dotted)


# -- k1: registry and library events (Elastic Defend) ----------------------------------------
_REGISTRY_TYPES = (
    ("deletion", RegistryOp.DELETE),
    ("creation", RegistryOp.CREATE),
    ("change", RegistryOp.SET_VALUE),
)


def _registry(record: Mapping[str, Any], types: set[str], origin: Origin) -> list[Event]:
    """`registry.path` (the key, and the value when one is set), `registry.data.strings`;
    the op from event.type (creation, change, deletion)."""
    ops = [op for name, op in _REGISTRY_TYPES if name in types]
    if not ops:
        return Skipped(f"ecs registry event.type {sorted(types)} is not a change")
    base = _base(record, origin)
    path = _opt(record, "registry.path")
    if path is None:
        hive, key = _opt(record, "registry.hive"), _opt(record, "registry.key")
        if key is None:
            raise ParseError("registry.path", "missing, and no registry.key either")
        path = "\\".join(p for p in (hive, key, _opt(record, "registry.value")) if p)
    data = dig(record, "registry.data.strings")
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if isinstance(data, list):  # a multi-string value
        details = ", ".join(str(v) for v in data) or None
    else:
        value = None if data in (_MISSING, None) else str(data)
        details = registry_details(_opt(record, "registry.data.type"), value)
    facts = RegistryFacts(
        path=normalise_registry_path(path),
        op=ops[0],
        event_type=_opt(record, "event.action"),
        details=details,
    )
    return [Event(kind=Kind.REGISTRY, process=_actor(record, base["host"]), registry=facts, **base)]


def _library(record: Mapping[str, Any], types: set[str], origin: Origin) -> list[Event]:
    """A module loaded: `dll.path` with `dll.hash.*`, `dll.pe.*`, `dll.code_signature.*`."""
    if types and "start" not in types and "load" not in (_opt(record, "event.action") or ""):
        return Skipped(f"ecs library event.type {sorted(types)} is not a load")
    base = _base(record, origin)
    path = _opt(record, "dll.path")
    if path is None:
        raise ParseError("dll.path", "missing")
    load = ImageLoadFacts(path, _image_facts(record, "dll"))
    return [
        Event(kind=Kind.IMAGE_LOAD, process=_actor(record, base["host"]), image_load=load, **base)
    ]


# ---- authentication (Elastic Defend security events; winlogbeat-shaped ECS) -------------------
_LOGOFF_ACTIONS = ("log_off", "logoff", "logged-out", "logout", "log-off")
_LOGON_ACTIONS = ("log_on", "logon", "logged-in", "login", "log-on", "ssh_login", "user_login")


def _authentication(record: Mapping[str, Any], types: set[str], origin: Origin) -> list[Event]:
    """An `event.category: authentication` event: `event.outcome: failure` is a failed logon,
    `event.action` log_off (or `event.type: end`) a logoff, a logon otherwise. The account
    is `user.id` (the SID on Windows) / `user.domain` / `user.name`; the session
    `process.Ext.session_info.id` (Elastic Defend) or `winlog.logon.id` (winlogbeat), its
    type `process.Ext.session_info.logon_type` / `winlog.logon.type`, the peer `source.ip` /
    `source.port` / `source.domain` (else `process.Ext.session_info.client_address`). The
    process of the event authenticated the logon (lsass, sshd): it is not part of it."""
    action = (_opt(record, "event.action") or "").lower()
    outcome = (_opt(record, "event.outcome") or "").lower()
    logoff = action in _LOGOFF_ACTIONS or ("end" in types and action not in _LOGON_ACTIONS)
    if outcome not in ("", "success", "failure", "unknown"):
        raise ParseError("event.outcome", f"expected success, failure or unknown, got {outcome}")
    if not logoff and action and action not in _LOGON_ACTIONS and "start" not in types:
        return Skipped(f"ecs authentication event.action {action} is neither a logon nor a logoff")
    if outcome == "unknown" and not logoff:
        return Skipped("ecs authentication with event.outcome unknown: no session, no failure")
    base = _base(record, origin)
    account = account_ref(
        as_sid(_opt(record, "user.id")), _opt(record, "user.domain"), _opt(record, "user.name")
    )
    if account is None:
        raise ParseError("user.name", "missing, and no user.id SID either")
    session = "process.Ext.session_info."
    logon_id = logon_id_hex(_first(record, session + "id", "winlog.logon.id"))
    failed = outcome == "failure" and not logoff
    if logoff and logon_id is None:
        raise ParseError("process.Ext.session_info.id", "missing: a logoff names its session")
    if not failed and logon_id is None:
        # a Linux or macOS login names no session id: there is no Logon to key it by
        return Skipped(
            "ecs authentication success without process.Ext.session_info.id or winlog.logon.id: "
            "no logon session to key"
        )
    kind = Kind.LOGOFF if logoff else Kind.LOGON
    logon_type = _first(record, session + "logon_type", "winlog.logon.type")
    source_ip = _opt(record, "source.ip") or _opt(record, session + "client_address")
    facts = LogonFacts(
        account=account,
        logon_id=logon_id,
        logon_type=logon_type_number(logon_type),
        failed=failed,
        failure_reason=(
            _first(record, "event.reason", "winlog.logon.failure.reason") if failed else None
        ),
        source_ip=_peer_ip(source_ip),
        source_port=_opt_read(record, "source.port", as_port),
        workstation=_opt(record, "source.domain"),
        auth_package=_first(record, session + "authentication_package"),
    )
    return [Event(kind=kind, process=None, logon=facts, **base)]


def _first(record: Mapping[str, Any], *dotted: str) -> str | None:
    for name in dotted:
        if (value := _opt(record, name)) is not None:
            return value
    return None


def _peer_ip(value: str | None) -> str | None:
    if value is None or value.strip() in ("-", "::1", "127.0.0.1"):
        return None
    try:
        return as_ip(value.strip().removeprefix("::ffff:"), "source.ip")
    except ParseError:
        return None  # "LOCAL", a name: not an address

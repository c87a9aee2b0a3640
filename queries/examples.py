"""A compact way to write event stories (rule examples, tests): one mapping per event.

    {kind: process_start, t: 0, host: h1, uid: m1, image: 'C:\\MSBuild.exe',
     command_line: '…', user: 'CORP\\dev', parent: {uid: c1, image: 'C:\\cmd.exe'}}
    {kind: file_write, t: 60, host: h1, uid: ed, image: …, path: 'C:\\src\\a.cs', op: modify,
     mask: '0x6'}
    {kind: network_connect, t: 5, host: h1, uid: m1, image: …, ip: 203.0.113.7, port: 443,
     hostname: x.test, direction: inbound, local_port: 8080}

`original_file_name` on a process (or parent) is its image's PE OriginalFileName; `direction`
defaults to outbound.

`t` is seconds after `base`. Process uids are taken as Sysmon-style GUID identities.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from provgraph.ingest.model import Event, FileOp, ImageFacts, Kind, Origin, ProcessRef

BASE = datetime(2024, 1, 1, tzinfo=UTC)


def _ref(spec: Mapping[str, Any], prefix: str, start: datetime | None = None) -> ProcessRef:
    return ProcessRef(
        uid=f"g:{prefix}{spec['uid']}",
        pid=spec.get("pid"),
        image=spec.get("image"),
        command_line=spec.get("command_line"),
        user=spec.get("user"),
        start_time=start,
        image_facts=ImageFacts(original_file_name=spec["original_file_name"])
        if spec.get("original_file_name")
        else None,
    )


def event_from_spec(
    spec: Mapping[str, Any], line: int = 1, base: datetime = BASE, prefix: str = ""
) -> Event:
    kind = Kind(spec["kind"])
    ts = base + timedelta(seconds=float(spec["t"]))
    host = prefix + str(spec["host"])
    process = _ref(spec, prefix, ts if kind is Kind.PROCESS_START else None)
    common: dict[str, Any] = {
        "kind": kind,
        "ts": ts,
        "host": host,
        "process": process,
        "origin": Origin("example", "<rule example>", line),
    }
    if kind is Kind.PROCESS_START and spec.get("parent"):
        common["parent"] = _ref(spec["parent"], prefix)
    if kind is Kind.FILE_WRITE:
        common.update(
            file_path=spec["path"],
            file_op=FileOp(spec.get("op", "create")),
            access_mask=spec.get("mask"),
        )
    if kind is Kind.NETWORK_CONNECT:
        common.update(
            remote_ip=str(spec["ip"]),
            remote_port=spec.get("port"),
            protocol=spec.get("protocol", "tcp"),
            remote_hostname=spec.get("hostname"),
            local_port=spec.get("local_port"),
            direction=spec.get("direction", "outbound"),
        )
    return Event(**common)


def events_from_specs(
    specs: Iterable[Mapping[str, Any]], base: datetime = BASE, prefix: str = ""
) -> list[Event]:
    return [event_from_spec(s, i, base, prefix) for i, s in enumerate(specs, 1)]

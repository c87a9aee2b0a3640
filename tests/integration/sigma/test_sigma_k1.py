"""Sigma on graph v2's k1 kinds, on the real server: registry, image and driver loads, process
access, remote threads, pipes and WMI, from Sysmon records through the real ingest pipeline,
each rule run as its compiled Cypher and matching exactly what Sigma means on those records;
and IntegrityLevel / CurrentDirectory, stored on the process at ingest, streamed and in Cypher
alike. The k1 logsources run as Cypher (the stream plan says so)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from provgraph.graph.pipeline import ingest_sources
from provgraph.graph.tx import Graph
from provgraph.queries.engine import evaluate
from provgraph.queries.rule import Rule
from provgraph.queries.sigma import compile_path
from provgraph.queries.sigma.stream import SigmaStream, row_key, stream_plan
from sigma_common import WIPE_ALL
from sysmon_records import BASE, Recorder, guid

REG = "C:\\Windows\\System32\\reg.exe"
DUMP = "C:\\Users\\Public\\procdump.exe"
LSASS = "C:\\Windows\\System32\\lsass.exe"
RUNDLL = "C:\\Windows\\System32\\rundll32.exe"
RESTORE = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\SystemRestore\\DisableSR"
RUN_VALUE = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\Updater"
NEW_KEY = "HKU\\S-1-5-21-1-2-3-1001\\Software\\Evil"
DBGHELP = "C:\\Windows\\System32\\dbghelp.dll"
EVIL_DLL = "C:\\Users\\Public\\evil.dll"
DRIVER = "C:\\Windows\\System32\\drivers\\evil.sys"
ZONE = "C:\\Users\\alice\\Downloads\\tool.exe:Zone.Identifier"


def _records() -> list[dict[str, Any]]:
    rec = Recorder("ws1")
    rec.start(
        0,
        "reg",
        REG,
        "reg.exe add x",
        extra={"IntegrityLevel": "High", "CurrentDirectory": "C:\\Users\\alice\\"},
    )
    rec.start(
        1,
        "dump",
        DUMP,
        "procdump.exe -ma lsass.exe",
        extra={"IntegrityLevel": "Medium", "CurrentDirectory": "C:\\Windows\\Temp\\"},
    )
    rec.start(2, "lsass", LSASS, "lsass.exe", extra={"IntegrityLevel": "System"})
    rec.start(3, "rundll", RUNDLL, "rundll32.exe x.dll,Run")
    rec.start(4, "child", "C:\\Users\\Public\\child.exe", "child.exe", parent="rundll")
    set_value = {"EventType": "SetValue", "TargetObject": RESTORE}
    rec.act(13, 10, "reg", REG, {**set_value, "Details": "DWORD (0x00000001)"})
    rec.act(13, 11, "reg", REG, {**set_value, "Details": "DWORD (0x00000000)"})
    rec.act(12, 12, "reg", REG, {"EventType": "CreateKey", "TargetObject": NEW_KEY})
    rec.act(12, 13, "reg", REG, {"EventType": "DeleteValue", "TargetObject": RUN_VALUE})
    rec.act(
        14,
        14,
        "reg",
        REG,
        {
            "EventType": "RenameKey",
            "TargetObject": "HKLM\\SOFTWARE\\Old",
            "NewName": "HKLM\\SOFTWARE\\New",
        },
    )
    signed = {"Signed": "true", "Signature": "Microsoft Windows", "SignatureStatus": "Valid"}
    rec.act(
        7,
        15,
        "rundll",
        RUNDLL,
        {"ImageLoaded": DBGHELP, "Hashes": "SHA1=" + "AB" * 20 + ",IMPHASH=" + "CD" * 16, **signed},
    )
    rec.act(7, 16, "rundll", RUNDLL, {"ImageLoaded": EVIL_DLL, "Signed": "false"})
    rec.access(
        10,
        17,
        ("dump", DUMP),
        ("lsass", LSASS),
        GrantedAccess="0x1FFFFF",
        CallTrace="C:\\Windows\\SYSTEM32\\ntdll.dll+9c534|UNKNOWN(00007FFB2F1D0B80)",
    )
    rec.access(
        8,
        18,
        ("rundll", RUNDLL),
        ("lsass", LSASS),
        StartAddress="0x00007FFB2F1D0B80",
        StartModule="C:\\Windows\\System32\\KERNEL32.DLL",
        StartFunction="LoadLibraryA",
    )
    rec.act(17, 19, "dump", DUMP, {"EventType": "CreatePipe", "PipeName": "\\lsadump"})
    rec.act(18, 20, "rundll", RUNDLL, {"EventType": "ConnectPipe", "PipeName": "\\lsadump"})
    rec.system(6, 21, {"ImageLoaded": DRIVER, "Signed": "false", "Hashes": "SHA256=" + "EF" * 32})
    wmi = {"Operation": "Created", "User": "CORP\\alice"}
    rec.system(
        19,
        22,
        {
            **wmi,
            "EventType": "WmiFilterEvent",
            "EventNamespace": '"root\\\\cimv2"',
            "Name": '"BotFilter"',
            "Query": '"SELECT * FROM __InstanceModificationEvent WITHIN 60"',
        },
    )
    rec.system(
        20,
        23,
        {
            **wmi,
            "EventType": "WmiConsumerEvent",
            "Name": '"BotConsumer"',
            "Type": "Command Line",
            "Destination": '"powershell.exe -enc SQBFAFgA"',
        },
    )
    rec.system(
        21,
        24,
        {
            **wmi,
            "EventType": "WmiBindingEvent",
            "Consumer": '\\\\.\\root\\subscription:CommandLineEventConsumer.Name=\\"BotConsumer\\"',
            "Filter": '\\\\.\\root\\subscription:__EventFilter.Name=\\"BotFilter\\"',
        },
    )
    # where a download came from: its Zone.Identifier stream (Sysmon 15 Contents)
    rec.act(
        15,
        25,
        "dump",
        DUMP,
        {
            "TargetFilename": ZONE,
            "Hash": "SHA256=" + "12" * 32,
            "Contents": "[ZoneTransfer]  ZoneId=3  HostUrl=http://198.51.100.7/tool.exe  ",
        },
    )
    return rec.records


def _sel(**fields: Any) -> dict[str, Any]:
    return {"sel": fields, "condition": "sel"}


def _uid(name: str) -> str:
    return "g:" + guid(name).lower()


# rule number -> (category, detection, what it must match: (process short name or None, the
# logsource's distinguishing column value))
CASES: dict[int, tuple[str, dict[str, Any], set[tuple[str | None, Any]]]] = {
    1: (
        "registry_set",
        _sel(**{"TargetObject|endswith": "\\DisableSR", "Details": "DWORD (0x00000001)"}),
        {("reg", RESTORE)},
    ),
    # one row per value set: the edge holds both values, each is an event
    2: (
        "registry_set",
        {
            "a": {"Details": "DWORD (0x00000000)"},
            "b": {"Details": "DWORD (0x00000001)"},
            "condition": "a and not b",
        },
        {("reg", RESTORE)},
    ),
    3: (
        "registry_add",
        _sel(EventType="CreateKey", **{"TargetObject|startswith": "HKU\\"}),
        {("reg", NEW_KEY)},
    ),
    4: (
        "registry_delete",
        _sel(EventType="DeleteValue", **{"TargetObject|contains": "\\CurrentVersion\\Run\\"}),
        {("reg", RUN_VALUE)},
    ),
    5: ("registry_delete", _sel(EventType="DeleteKey"), set()),  # a value was deleted
    6: (
        "registry_event",
        _sel(EventID=14, **{"NewName|endswith": "\\New"}),
        {("reg", "HKLM\\SOFTWARE\\Old")},
    ),
    7: (
        "registry_event",
        _sel(EventType="SetValue", **{"Details|contains": "0x00000001"}),
        {("reg", RESTORE)},
    ),
    8: ("registry_set", _sel(**{"TargetObject|contains": "\\Evil"}), set()),  # created, not set
    9: (
        "image_load",
        _sel(
            **{
                "ImageLoaded|endswith": "\\dbghelp.dll",
                "Image|endswith": "\\rundll32.exe",
                "Hashes|contains": "IMPHASH=" + "cd" * 16,
            },
            Signed="true",
            SignatureStatus="valid",
        ),
        {("rundll", DBGHELP)},
    ),
    10: ("image_load", _sel(Signed="false"), {("rundll", EVIL_DLL)}),
    11: (
        "process_access",
        _sel(
            **{
                "TargetImage|endswith": "\\lsass.exe",
                "SourceImage|endswith": "\\procdump.exe",
                "CallTrace|contains": "UNKNOWN(",
            },
            GrantedAccess="0x1FFFFF",
        ),
        {("dump", _uid("lsass"))},
    ),
    12: (
        "create_remote_thread",
        _sel(
            StartFunction="LoadLibraryA",
            **{"StartAddress|endswith": "0B80", "StartModule|endswith": "\\kernel32.dll"},
        ),
        {("rundll", _uid("lsass"))},
    ),
    13: (
        "pipe_created",
        _sel(PipeName="\\lsadump"),
        {("dump", "\\lsadump"), ("rundll", "\\lsadump")},
    ),
    14: (
        "pipe_created",
        _sel(PipeName="\\lsadump", EventType="ConnectPipe"),
        {("rundll", "\\lsadump")},
    ),
    15: ("driver_load", _sel(Signed="false", **{"ImageLoaded|endswith": ".sys"}), {(None, DRIVER)}),
    16: (
        "wmi_event",
        _sel(EventID=20, **{"Destination|contains": "powershell"}),
        {(None, "BotConsumer")},
    ),
    17: ("wmi_event", _sel(EventID=21), {(None, "BotConsumer")}),
    18: (
        "wmi_event",
        _sel(**{"EventNamespace|endswith": "cimv2", "Query|contains": "__InstanceModification"}),
        {(None, "BotFilter")},
    ),
    19: (
        "process_creation",
        _sel(IntegrityLevel=["High", "S-1-16-12288"]),
        {("reg", "")},
    ),
    20: ("process_creation", _sel(**{"CurrentDirectory|contains": "\\Temp\\"}), {("dump", "")}),
    21: (
        "registry_set",
        _sel(IntegrityLevel="High", **{"TargetObject|endswith": "\\DisableSR"}),
        {("reg", RESTORE)},
    ),
    23: (  # SigmaHQ's "Unusual File Download from Direct IP Address", trimmed
        "create_stream_hash",
        {
            "sel": {
                "Contents|re": "http[s]?://[0-9]{1,3}\\.[0-9]{1,3}\\.",
                "TargetFilename|contains": ":Zone",
            },
            "condition": "sel",
        },
        {("dump", ZONE)},
    ),
    24: (  # the stream's text is what a rule reads: another host's URL does not match
        "create_stream_hash",
        _sel(**{"Contents|contains": "HostUrl=https://files.example"}),
        set(),
    ),
}
# the column that tells one match of a logsource from another besides the process
_COLUMN = {
    "registry_set": "target_object",
    "registry_add": "target_object",
    "registry_delete": "target_object",
    "registry_event": "target_object",
    "image_load": "image_loaded",
    "process_access": "target_uid",
    "create_remote_thread": "target_uid",
    "pipe_created": "pipe_name",
    "driver_load": "image_loaded",
    "wmi_event": "wmi_name",
    "create_stream_hash": "target_filename",
}
# the creator's creator: known from other records (Cypher)
CASES[22] = (
    "process_creation",
    _sel(**{"GrandParentImage|endswith": "\\explorer.exe"}),
    {("child", "")},
)
STREAMED = {19, 20}


def _found(category: str, rows: list[dict[str, Any]]) -> set[tuple[str | None, Any]]:
    column = _COLUMN.get(category)
    return {(r.get("process_uid"), r[column] if column else "") for r in rows}


def _expected(n: int) -> set[tuple[str | None, Any]]:
    return {(None if who is None else _uid(who), value) for who, value in CASES[n][2]}


@pytest.fixture
def rules(tmp_path: Path) -> dict[int, Rule]:
    folder = tmp_path / "rules"
    folder.mkdir()
    docs = [
        {
            "title": f"k1 rule {n}",
            "id": f"00000000-0000-4000-9100-{n:012d}",
            "status": "test",
            "level": "high",
            "logsource": {"category": category, "product": "windows"},
            "detection": detection,
        }
        for n, (category, detection, _) in CASES.items()
    ]
    (folder / "rules.yml").write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    report = compile_path([folder])
    assert len(report.compiled) == len(CASES), report.format()
    return {int(r.name.rsplit(" ", 1)[-1]): r for r in report.rules}


def _ingest(graph: Graph, tmp_path: Path, stream: SigmaStream | None = None) -> None:
    path = tmp_path / "records.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in _records()), encoding="utf-8")
    observer = stream.observe if stream is not None else None
    ingest_sources(graph, [str(path)], observer=observer, parallel=False)


def test_k1_rules_match_as_sigma_means_them(
    graph: Graph, rules: dict[int, Rule], tmp_path: Path
) -> None:
    graph.write_autocommit(WIPE_ALL)
    plan = stream_plan(rules.values())
    assert {int(r.name.rsplit(" ", 1)[-1]) for r in plan.cypher} == set(CASES) - STREAMED
    for rule in plan.cypher:
        category = rule.metadata["sigma"]["logsource"]["category"]
        if category != "process_creation":
            assert plan.why[rule.id] == f"{category} runs as Cypher"
    assert "known from other events" in plan.why[rules[22].id]
    stream = SigmaStream(plan.streamed, plan.cypher)
    _ingest(graph, tmp_path, stream)
    streamed, fetched = stream.matched(), stream.matches(graph)
    for n, (category, _, _) in CASES.items():
        rows = [m.row for m in evaluate(graph, rules[n])]
        assert _found(category, rows) == _expected(n), (n, rows)
        if n in STREAMED:
            assert streamed[rules[n].id] == {row_key(category, r) for r in rows}, n
            assert _found(category, [m.row for m in fetched[rules[n].id]]) == _expected(n), n


def test_k1_rows_carry_their_window_entities_and_summary(
    graph: Graph, rules: dict[int, Rule], tmp_path: Path
) -> None:
    graph.write_autocommit(WIPE_ALL)
    _ingest(graph, tmp_path)
    # the two values set on one key: two rows, each the edge's events in the window
    (row,) = [m.row for m in evaluate(graph, rules[1])]
    assert (row["host"], row["image"], row["registry_op"]) == ("ws1", REG, "set_value")
    assert row["registry_key"] == "ws1|" + RESTORE.lower()
    assert row["first_seen"] == BASE + timedelta(seconds=10)
    assert row["last_seen"] == BASE + timedelta(seconds=11)
    # a window holding only the second value-set still finds the key (one of its events)
    late = [
        m.row
        for m in evaluate(
            graph, rules[1], BASE + timedelta(seconds=11), BASE + timedelta(seconds=12)
        )
    ]
    assert [(r["first_seen"], r["last_seen"]) for r in late] == [
        (BASE + timedelta(seconds=11), BASE + timedelta(seconds=11))
    ]
    assert (
        evaluate(graph, rules[1], BASE + timedelta(seconds=30), BASE + timedelta(seconds=40)) == []
    )
    (match,) = evaluate(graph, rules[11])
    assert match.row["granted_access"] == "0x1fffff"
    assert {(e.role, e.type) for e in match.entities} >= {
        ("process", "process"),
        ("target", "process"),
    }
    (driver,) = evaluate(graph, rules[15])
    assert driver.row["host"] == "ws1" and driver.row.get("process_uid") is None
    assert {(e.role, e.type, e.key) for e in driver.entities} >= {("host", "host", "ws1")}


def test_integrity_and_directory_survive_re_ingest(graph: Graph, tmp_path: Path) -> None:
    graph.write_autocommit(WIPE_ALL)
    read = (
        "MATCH (p:Process) WHERE p.integrity_level IS NOT NULL OR p.current_directory IS NOT NULL"
        " RETURN p.uid AS uid, p.integrity_level AS il, p.current_directory AS cd ORDER BY uid"
    )
    _ingest(graph, tmp_path)
    first = [dict(r) for r in graph.read(read)]
    assert {(r["uid"], r["il"], r["cd"]) for r in first} == {
        (_uid("reg"), "High", "C:\\Users\\alice\\"),
        (_uid("dump"), "Medium", "C:\\Windows\\Temp\\"),
        (_uid("lsass"), "System", None),
    }
    _ingest(graph, tmp_path)
    assert [dict(r) for r in graph.read(read)] == first

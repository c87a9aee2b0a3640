"""What a process does to the system (issue 14, k1): image and driver loads, process access
and injection, registry, pipes, WMI subscriptions, raw reads, tampering, file events besides
writes, on the real Neo4j; on real recordings where one exists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from provgraph.graph.loader import write_events
from provgraph.graph.tx import Graph
from provgraph.ingest.ecs import parse_ecs
from provgraph.ingest.mde import parse_mde
from provgraph.ingest.model import Origin
from provgraph.ingest.reader import iter_events
from provgraph.ingest.windows import parse_windows

DATA = Path(__file__).resolve().parents[1] / "data"
EMPIRE = DATA / "otrf_empire_msbuild_dcerpc_wmi_smb.mordor.ndjson"


def _distinct(event_id: int, *fields: str) -> int:
    """Distinct (process, target, time) of one Sysmon event id in the Empire set: a timed
    edge counts distinct times (two records of one millisecond are one)."""
    seen = set()
    for line in EMPIRE.read_text().splitlines():
        record = json.loads(line)
        if record.get("SourceName") == "Microsoft-Windows-Sysmon" and record["EventID"] == event_id:
            seen.add(tuple(str(record.get(f, "")).lower() for f in fields))
    return len(seen)


def _one(graph: Graph, query: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    rows = graph.read(query, params or {})
    assert len(rows) == 1, rows
    return rows[0]


def test_empire_image_loads_keep_the_module_and_its_pe_facts(graph: Graph) -> None:
    write_events(graph, iter_events(EMPIRE))
    # Sysmon 7: svchost loads mswsock.dll; the File carries the module's facts and hashes
    row = _one(
        graph,
        "MATCH (p:Process {uid: $uid})-[r:LOADED]->(f:File {key: $file}) "
        "RETURN p.name AS name, r.count AS n, r.sources AS sources, r.raw IS NOT NULL AS raw, "
        "f.original_name AS original, f.sha256 AS sha256, f.imphash AS imphash, "
        "f.signed AS signed, f.signer AS signer, f.signature_status AS status",
        {
            "uid": "g:d273d0f0-e873-5f64-4100-000000000800",
            "file": r"workstation6|c:\windows\system32\mswsock.dll",
        },
    )
    assert row["name"] == "svchost.exe" and row["n"] >= 1 and row["raw"]
    assert row["sources"][0].startswith("sysmon:") and row["sources"][0].endswith(
        f"{EMPIRE.name}:" + row["sources"][0].rsplit(":", 1)[1]
    )
    assert row["original"] == "mswsock.dll" and row["signed"] is True
    assert row["sha256"] == "20008aab6285fb2b24de1e72d11654316ff601918fd05b7df2f9894c64a16956"
    assert row["imphash"] == "e5e26c86bc73f56d7edd17d98802aa21"
    assert (row["signer"], row["status"]) == ("Microsoft Windows", "Valid")
    total = _one(graph, "MATCH ()-[r:LOADED]->() RETURN sum(r.count) AS n")["n"]
    # every Sysmon 7 record of the set (477, of 462 distinct times), none lost to folding
    assert total == _distinct(7, "ProcessGuid", "ImageLoaded", "UtcTime")


def test_empire_process_access_links_two_processes(graph: Graph) -> None:
    write_events(graph, iter_events(EMPIRE))
    row = _one(
        graph,
        "MATCH (s:Process {uid: $s})-[r:ACCESSED]->(t:Process {uid: $t}) "
        "RETURN s.image AS source, t.image AS target, r.granted_access AS access, "
        "r.call_trace AS trace, r.count AS n",
        {
            "s": "g:b34bc01c-7fae-5f63-1000-000000000400",
            "t": "g:b34bc01c-803f-5f63-5402-000000000400",
        },
    )
    assert row["source"] == r"C:\windows\system32\svchost.exe"
    assert row["target"] == r"C:\windows\System32\svchost.exe"
    assert "0x1000" in row["access"]
    assert any(t.startswith(r"C:\windows\SYSTEM32\ntdll.dll+9c534|") for t in row["trace"])
    assert _one(graph, "MATCH ()-[r:ACCESSED]->() RETURN sum(r.count) AS n")["n"] == _distinct(
        10, "SourceProcessGUID", "TargetProcessGUID", "UtcTime"
    )


def test_empire_registry_pipes_and_raw_reads(graph: Graph) -> None:
    # Sysmon's alone: the Security key writes of the set share edges with some of them
    write_events(graph, (e for e in iter_events(EMPIRE) if e.origin.source == "sysmon"))
    # Sysmon 13 (NXLog lost EventType: the id says "set"), value data kept
    row = _one(
        graph,
        "MATCH (p:Process)-[r:WROTE_REGISTRY]->(k:RegistryKey {key: $key}) "
        "RETURN p.uid AS uid, k.path AS path, k.name AS name, r.ops AS ops, "
        "r.details AS details, r.event_types AS types",
        {
            "key": "workstation5|hklm\\software\\microsoft\\windows\\currentversion"
            "\\vfuprovider\\starttime"
        },
    )
    assert row["uid"] == "g:b34bc01c-7fb5-5f63-4300-000000000400"
    assert row["name"] == "StartTime" and row["ops"] == ["set_value"] and row["types"] == []
    assert "QWORD (0x01d68f96-0x73873e84)" in row["details"]
    counts = _one(
        graph,
        "MATCH ()-[r:WROTE_REGISTRY]->() UNWIND r.ops AS op WITH op, sum(r.count) AS n "
        "RETURN collect([op, n]) AS ops",
    )
    ops = dict(counts["ops"])
    assert ops["create_or_delete"] == _distinct(12, "ProcessGuid", "TargetObject", "UtcTime")
    assert ops["set_value"] == _distinct(13, "ProcessGuid", "TargetObject", "UtcTime")
    # Sysmon 17/18: the server end and a client of a pipe
    created = _one(
        graph,
        "MATCH (p:Process)-[:CREATED_PIPE]->(x:Pipe {key: $key}) "
        "RETURN p.uid AS uid, x.name AS name",
        {"key": r"workstation6|\winsock2\catalogchangelistener-bf0-0"},
    )
    assert created == {
        "uid": "g:d273d0f0-e873-5f64-4100-000000000800",
        "name": r"\Winsock2\CatalogChangeListener-bf0-0",
    }
    client = _one(
        graph,
        "MATCH (p:Process {uid: $uid})-[r:CONNECTED_PIPE]->(x:Pipe {key: $key}) "
        "RETURN p.name AS name, r.count AS n",
        {"uid": "g:d273d0f0-cc0b-5f67-0808-000000000800", "key": r"workstation6|\wkssvc"},
    )
    assert client["name"] == "wmiprvse.exe" and client["n"] >= 1
    pipes = _one(
        graph,
        "MATCH ()-[r:CREATED_PIPE|CONNECTED_PIPE]->(:Pipe) RETURN sum(r.count) AS n",
    )
    assert pipes["n"] == _distinct(17, "ProcessGuid", "PipeName", "UtcTime") + _distinct(
        18, "ProcessGuid", "PipeName", "UtcTime"
    )
    # Sysmon 9: the volume read around the file system
    raw = _one(
        graph,
        "MATCH (p:Process {uid: $uid})-[r:READ_RAW]->(f:File) RETURN f.path AS device",
        {"uid": "g:b34bc01c-7fb1-5f63-2c00-000000000400"},
    )
    assert raw["device"] == r"\Device\HarddiskVolume2"


# -- generated records, in the shape evtx-rs writes (no public recording has these ids) -------
SYSMON = "Microsoft-Windows-Sysmon"
SECURITY = "Microsoft-Windows-Security-Auditing"
HOST = "WKS7.corp.example"
ATTACKER = "{0197231e-1111-69e1-0000-000000000800}"
LSASS = "{0197231e-2222-69e1-0000-000000000800}"


def _record(provider: str, event_id: int, second: int, **data: Any) -> dict[str, Any]:
    return {
        "Event": {
            "System": {
                "Provider": {"#attributes": {"Name": provider}},
                "EventID": event_id,
                "TimeCreated": {"#attributes": {"SystemTime": f"2026-04-17T05:24:{second:02d}Z"}},
                "Computer": HOST,
            },
            "EventData": {"UtcTime": f"2026-04-17 05:24:{second:02d}.000", **data}
            if provider == SYSMON
            else data,
        }
    }


def _ingest(graph: Graph, records: list[dict[str, Any]]) -> None:
    events = []
    for line, record in enumerate(records, 1):
        parsed = parse_windows(record, Origin("windows", "gen.json", line))
        assert parsed, (line, parsed)
        events += parsed
    write_events(graph, events)


def _actor(guid: str = ATTACKER, image: str = r"C:\Users\Public\tool.exe") -> dict[str, Any]:
    return {"ProcessGuid": guid, "ProcessId": 4242, "Image": image, "User": r"CORP\eve"}


HASHES = (
    "SHA1=5E4F2C531C549BB72A658ED9DD16D491EDDBB286,MD5=FAB4B30C1C4F0A9202A7B42DCF1729DC,"
    "SHA256=1B48A4F8D20026E6C56E3AB4CC4788FA6425C8A75F8D91C2869FA533DE6B209E,"
    "IMPHASH=C324AAAC01F0F75C811E1F80C41B860C"
)


def test_generated_sysmon_driver_injection_registry_rename_and_file_events(graph: Graph) -> None:
    tool = r"C:\Users\Public\tool.exe"
    _ingest(
        graph,
        [
            _record(
                SYSMON,
                6,
                1,
                ImageLoaded=r"C:\Windows\System32\drivers\evil.sys",
                Hashes=HASHES,
                Signed="false",
                Signature="-",
                SignatureStatus="Unavailable",
            ),
            _record(
                SYSMON,
                8,
                2,
                SourceProcessGuid=ATTACKER,
                SourceProcessId=4242,
                SourceImage=tool,
                TargetProcessGuid=LSASS,
                TargetProcessId=860,
                TargetImage=r"C:\Windows\System32\lsass.exe",
                NewThreadId=7,
                StartAddress="0x00007FF6B2C21000",
                StartModule="-",
                StartFunction="-",
            ),
            _record(
                SYSMON,
                14,
                3,
                EventType="RenameKey",
                TargetObject=r"HKLM\SOFTWARE\Old",
                NewName=r"HKLM\SOFTWARE\New",
                **_actor(),
            ),
            _record(
                SYSMON,
                2,
                4,
                TargetFilename=r"C:\Users\Public\a.dll",
                CreationUtcTime="2019-01-01 00:00:00.000",
                PreviousCreationUtcTime="2026-04-17 05:24:03.000",
                **_actor(),
            ),
            _record(
                SYSMON,
                15,
                5,
                TargetFilename=r"C:\Users\Public\a.exe:Zone.Identifier",
                Hash=HASHES,
                Contents="[ZoneTransfer]  ZoneId=3",
                **_actor(),
            ),
            _record(SYSMON, 27, 6, TargetFilename=r"C:\Temp\x.exe", Hashes=HASHES, **_actor()),
            _record(SYSMON, 28, 7, TargetFilename=r"C:\Temp\y.exe", Hashes=HASHES, **_actor()),
            _record(SYSMON, 29, 8, TargetFilename=r"C:\Temp\z.exe", Hashes=HASHES, **_actor()),
            _record(SYSMON, 26, 9, TargetFilename=r"C:\Temp\z.exe", Hashes=HASHES, **_actor()),
            _record(SYSMON, 25, 10, Type="Image is replaced", **_actor()),
            _record(SYSMON, 24, 11, Session=1, ClientInfo="-", Hashes="SHA1=00", **_actor()),
        ],
    )
    driver = _one(
        graph,
        "MATCH (h:Host {name: 'wks7'})-[r:LOADED_DRIVER]->(f:File) "
        "RETURN f.path AS path, f.sha256 AS sha256, f.signed AS signed, "
        "f.signature_status AS status, r.count AS n",
    )
    assert driver == {
        "path": r"C:\Windows\System32\drivers\evil.sys",
        "sha256": "1b48a4f8d20026e6c56e3ab4cc4788fa6425c8a75f8d91c2869fa533de6b209e",
        "signed": False,
        "status": "Unavailable",
        "n": 1,
    }
    injected = _one(
        graph,
        "MATCH (s:Process)-[r:INJECTED]->(t:Process) RETURN s.uid AS s, t.uid AS t, "
        "t.name AS target, r.start_address AS address, r.start_module AS module",
    )
    assert injected == {
        "s": "g:0197231e-1111-69e1-0000-000000000800",
        "t": "g:0197231e-2222-69e1-0000-000000000800",
        "target": "lsass.exe",
        "address": ["0x7ff6b2c21000"],
        "module": [],
    }
    renamed = _one(
        graph,
        "MATCH (:Process)-[r:WROTE_REGISTRY]->(k:RegistryKey) "
        "RETURN k.path AS path, r.ops AS ops, r.event_types AS types, r.new_names AS new",
    )
    assert renamed == {
        "path": r"HKLM\SOFTWARE\Old",
        "ops": ["rename"],
        "types": ["RenameKey"],
        "new": [r"HKLM\SOFTWARE\New"],
    }
    files = graph.read(
        "MATCH (:Process)-[w:WROTE]->(f:File) RETURN f.name AS name, w.ops AS ops, "
        "f.sha1 AS sha1 ORDER BY name"
    )
    sha1 = "5e4f2c531c549bb72a658ed9dd16d491eddbb286"
    assert files == [
        {"name": "a.dll", "ops": ["time_change"], "sha1": None},
        {"name": "a.exe:zone.identifier", "ops": ["stream"], "sha1": sha1},
        {"name": "x.exe", "ops": ["blocked_exe"], "sha1": sha1},
        {"name": "y.exe", "ops": ["blocked_shred"], "sha1": sha1},
        {"name": "z.exe", "ops": ["exe_detected", "delete"], "sha1": sha1},
    ]
    tampered = _one(
        graph,
        "MATCH (p:Process)-[r:TAMPERED]->(f:File) RETURN f.path AS path, r.types AS types",
    )
    assert tampered == {"path": tool, "types": ["Image is replaced"]}
    clip = _one(graph, "MATCH (p:Process)-[r:SET_CLIPBOARD]->(h:Host) RETURN h.name AS h")
    assert clip == {"h": "wks7"}


def test_generated_wmi_subscription_links_filter_and_consumer(graph: Graph) -> None:
    _ingest(
        graph,
        [
            _record(
                SYSMON,
                19,
                1,
                EventType="WmiFilterEvent",
                Operation="Created",
                User=r"CORP\eve",
                EventNamespace='"root\\\\cimv2"',
                Name='"BotFilter82"',
                Query='"SELECT * FROM __InstanceModificationEvent WITHIN 60"',
            ),
            _record(
                SYSMON,
                20,
                2,
                EventType="WmiConsumerEvent",
                Operation="Created",
                User=r"CORP\eve",
                Name='"BotConsumer23"',
                Type="Command Line",
                Destination='"powershell.exe -enc AAAA"',
            ),
            _record(
                SYSMON,
                21,
                3,
                EventType="WmiBindingEvent",
                Operation="Created",
                User=r"CORP\eve",
                Consumer=r'"\\.\ROOT\subscription:CommandLineEventConsumer.Name=\"BotConsumer23\""',
                Filter=r'"\\.\ROOT\subscription:__EventFilter.Name=\"BotFilter82\""',
            ),
        ],
    )
    row = _one(
        graph,
        "MATCH (h:Host)-[:REGISTERED_WMI]->(f:WmiObject {kind: 'filter'})"
        "-[b:BOUND_TO]->(c:WmiObject {kind: 'consumer'})<-[r:REGISTERED_WMI]-(h) "
        "RETURN f.name AS filter, f.query AS query, c.name AS consumer, "
        "c.consumer_type AS type, c.destination AS command, b.operations AS ops, "
        "r.users AS users",
    )
    assert row == {
        "filter": "BotFilter82",
        "query": "SELECT * FROM __InstanceModificationEvent WITHIN 60",
        "consumer": "BotConsumer23",
        "type": "Command Line",
        "command": "powershell.exe -enc AAAA",
        "ops": ["Created"],
        "users": [r"CORP\eve"],
    }


def test_security_key_writes_and_4657_share_sysmons_key_and_process(graph: Graph) -> None:
    """Security names reg.exe by pid alone (0x1092), Sysmon by its GUID with that pid: one
    process; 4657's key and value name and Sysmon's TargetObject: one RegistryKey."""
    run = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run"
    reg = r"C:\Windows\System32\reg.exe"
    security = {
        "SubjectUserName": "eve",
        "SubjectDomainName": "CORP",
        "ProcessId": "0x1092",
        "ProcessName": reg,
    }
    _ingest(
        graph,
        [
            _record(
                SECURITY,
                4657,
                1,
                ObjectName=r"\REGISTRY\MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run",
                ObjectValueName="Updater",
                OperationType="%%1904",
                NewValue=r"C:\Users\Public\tool.exe",
                **security,
            ),
            _record(
                SECURITY,
                4663,
                2,
                ObjectType="Key",
                ObjectName=r"\REGISTRY\MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run",
                AccessMask="0x2",
                **security,
            ),
            _record(
                SYSMON,
                13,
                3,
                EventType="SetValue",
                TargetObject=run + r"\Updater",
                Details=r"C:\Users\Public\tool.exe",
                **_actor(image=reg),
            ),
        ],
    )
    rows = graph.read(
        "MATCH (p:Process)-[r:WROTE_REGISTRY]->(k:RegistryKey) "
        "RETURN k.path AS path, p.uid AS uid, "
        "COLLECT { UNWIND r.ops AS x RETURN x ORDER BY x } AS ops, "
        "COLLECT { UNWIND r.event_types AS x RETURN x ORDER BY x } AS types, r.details AS details, "
        "r.access_masks AS masks, r.count AS n ORDER BY path"
    )
    uid = "g:0197231e-1111-69e1-0000-000000000800"
    assert rows == [
        {
            "path": run,
            "uid": uid,
            "ops": ["set_value"],
            "types": ["4663"],
            "details": [],
            "masks": ["0x2"],
            "n": 1,
        },
        {
            "path": run + r"\Updater",
            "uid": uid,
            "ops": ["set_value"],  # 4657's "new value created" is Sysmon's SetValue too
            "types": ["4657", "SetValue"],
            "details": [r"C:\Users\Public\tool.exe"],
            "masks": [],
            "n": 2,
        },
    ]
    assert _one(graph, "MATCH (p:Process) RETURN count(p) AS n") == {"n": 1}


# -- Defender rows (generated, in the Advanced Hunting columns) ---------------------------------
def _mde(action: str, second: int, **columns: Any) -> dict[str, Any]:
    return {
        "Timestamp": f"2026-04-17T05:25:{second:02d}Z",
        "DeviceName": "wks7.corp.example",
        "ActionType": action,
        "InitiatingProcessId": 4242,
        "InitiatingProcessCreationTime": "2026-04-17T05:24:00.5Z",
        "InitiatingProcessFileName": "tool.exe",
        "InitiatingProcessFolderPath": r"C:\Users\Public\tool.exe",
        "InitiatingProcessAccountDomain": "corp",
        "InitiatingProcessAccountName": "eve",
        **columns,
    }


LSASS_COLUMNS = {
    "ProcessId": 860,
    "ProcessCreationTime": "2026-04-17T05:00:01Z",
    "FileName": "lsass.exe",
    "FolderPath": r"C:\Windows\System32\lsass.exe",
}


def test_defender_kinds_resolve_onto_sysmons_processes(graph: Graph) -> None:
    """Sysmon 1 starts tool.exe and lsass.exe (GUIDs); Defender names both by pid and
    creation time: its access, injection, registry, module and pipe rows land on the GUID
    nodes, and its pipe and key are Sysmon's too."""
    starts = [
        _record(
            SYSMON,
            1,
            0,
            ProcessGuid=ATTACKER,
            ProcessId=4242,
            Image=r"C:\Users\Public\tool.exe",
            CommandLine="tool.exe",
            ParentProcessGuid="{0197231e-0000-69e1-0000-000000000800}",
            ParentProcessId=1,
            ParentImage=r"C:\Windows\explorer.exe",
        ),
    ]
    starts[0]["Event"]["EventData"]["UtcTime"] = "2026-04-17 05:24:00.000"
    lsass = _record(
        SYSMON,
        1,
        1,
        ProcessGuid=LSASS,
        ProcessId=860,
        Image=r"C:\Windows\System32\lsass.exe",
        ParentProcessGuid="{0197231e-0000-69e1-0000-000000000900}",
        ParentProcessId=600,
        ParentImage=r"C:\Windows\System32\wininit.exe",
    )
    lsass["Event"]["EventData"]["UtcTime"] = "2026-04-17 05:00:00.000"
    _ingest(graph, [*starts, lsass])
    rows = [
        _mde(
            "OpenProcessApiCall", 1, AdditionalFields='{"DesiredAccess": 2097151}', **LSASS_COLUMNS
        ),
        _mde("CreateRemoteThreadApiCall", 2, **LSASS_COLUMNS),
        _mde(
            "RegistryValueSet",
            3,
            RegistryKey=r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run",
            RegistryValueName="Updater",
            RegistryValueData=r"C:\Users\Public\tool.exe",
        ),
        _mde(
            "ImageLoaded",
            4,
            FileName="dbghelp.dll",
            FolderPath=r"C:\Windows\System32\dbghelp.dll",
            SHA256="1B48A4F8D20026E6C56E3AB4CC4788FA6425C8A75F8D91C2869FA533DE6B209E",
        ),
        _mde(
            "NamedPipeEvent",
            5,
            AdditionalFields={
                "PipeName": r"\Device\NamedPipe\REDSUN",
                "FileOperation": "File created",
                "NamedPipeEnd": "Server",
            },
        ),
        _mde("DriverLoad", 6, FileName="evil.sys", FolderPath=r"C:\Temp\evil.sys"),
    ]
    events = []
    for line, row in enumerate(rows, 1):
        events += parse_mde(row, Origin("mde", "hunt.json", line))
    # and Sysmon's own view of the pipe
    events += parse_windows(
        _record(SYSMON, 17, 30, PipeName=r"\REDSUN", EventType="CreatePipe", **_actor()),
        Origin("windows", "gen.json", 9),
    )
    write_events(graph, events)
    attacker, target = (
        "g:0197231e-1111-69e1-0000-000000000800",
        "g:0197231e-2222-69e1-0000-000000000800",
    )
    assert _one(
        graph,
        "MATCH (s:Process)-[a:ACCESSED]->(t:Process) MATCH (s)-[i:INJECTED]->(t) "
        "RETURN s.uid AS s, t.uid AS t, a.granted_access AS access, i.actions AS actions",
    ) == {
        "s": attacker,
        "t": target,
        "access": ["0x1fffff"],
        "actions": ["CreateRemoteThreadApiCall"],
    }
    assert _one(
        graph,
        "MATCH (p:Process)-[r:WROTE_REGISTRY]->(k:RegistryKey) "
        "RETURN p.uid AS uid, k.path AS path, r.ops AS ops, r.details AS details",
    ) == {
        "uid": attacker,
        "path": r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run\Updater",
        "ops": ["set_value"],
        "details": [r"C:\Users\Public\tool.exe"],
    }
    assert _one(
        graph,
        "MATCH (p:Process)-[:LOADED]->(f:File) RETURN p.uid AS uid, f.name AS name, "
        "f.sha256 IS NOT NULL AS hashed",
    ) == {"uid": attacker, "name": "dbghelp.dll", "hashed": True}
    assert _one(
        graph,
        "MATCH (p:Process)-[r:CREATED_PIPE]->(x:Pipe) RETURN p.uid AS uid, x.name AS name, "
        "r.count AS n",
    ) == {"uid": attacker, "name": r"\REDSUN", "n": 2}
    assert _one(
        graph, "MATCH (:Host {name: 'wks7'})-[:LOADED_DRIVER]->(f:File) RETURN f.name AS name"
    ) == {"name": "evil.sys"}
    assert _one(graph, "MATCH (p:Process) RETURN count(p) AS n") == {"n": 4}  # + two parents


def test_elastic_defend_registry_and_library_events(graph: Graph) -> None:
    base = {
        "host": {"name": "wks7"},
        "process": {"entity_id": "ZWxhc3RpYy0x", "pid": 4242, "executable": r"C:\t\tool.exe"},
    }
    records = [
        {
            **base,
            "@timestamp": "2026-04-17T05:26:01Z",
            "event": {"category": ["registry"], "type": ["change"], "action": "modification"},
            "registry": {
                "path": r"HKEY_USERS\S-1-5-21-1\Software\Microsoft\Windows\CurrentVersion\Run\u",
                "data": {"strings": [r"C:\t\tool.exe"]},
            },
        },
        {
            **base,
            "@timestamp": "2026-04-17T05:26:02Z",
            "event": {"category": ["library"], "type": ["start"], "action": "load"},
            "dll": {
                "path": r"C:\t\evil.dll",
                "name": "evil.dll",
                "hash": {
                    "sha256": "1b48a4f8d20026e6c56e3ab4cc4788fa6425c8a75f8d91c2869fa533de6b209e"
                },
                "code_signature": {"exists": False},
                "pe": {"original_file_name": "EVIL.DLL"},
            },
        },
    ]
    events = []
    for line, record in enumerate(records, 1):
        events += parse_ecs(record, Origin("ecs", "defend.ndjson", line))
    write_events(graph, events)
    assert _one(
        graph,
        "MATCH (p:Process {uid: 'e:ZWxhc3RpYy0x'})-[r:WROTE_REGISTRY]->(k:RegistryKey) "
        "RETURN k.path AS path, r.ops AS ops, r.event_types AS types, r.details AS details",
    ) == {
        "path": r"HKU\S-1-5-21-1\Software\Microsoft\Windows\CurrentVersion\Run\u",
        "ops": ["set_value"],
        "types": ["modification"],
        "details": [r"C:\t\tool.exe"],
    }
    assert _one(
        graph,
        "MATCH (p:Process {uid: 'e:ZWxhc3RpYy0x'})-[:LOADED]->(f:File) "
        "RETURN f.name AS name, f.original_name AS original, f.signed AS signed",
    ) == {"name": "evil.dll", "original": "evil.dll", "signed": False}


def test_host_timeline_names_the_new_kinds(graph: Graph) -> None:
    from datetime import UTC, datetime

    from provgraph.queries.provenance import host_timeline

    _ingest(
        graph,
        [
            _record(SYSMON, 6, 1, ImageLoaded=r"C:\Windows\System32\drivers\evil.sys"),
            _record(SYSMON, 7, 2, ImageLoaded=r"C:\t\evil.dll", **_actor()),
            _record(
                SYSMON,
                10,
                3,
                SourceProcessGUID=ATTACKER,
                SourceImage=r"C:\t\tool.exe",
                TargetProcessGUID=LSASS,
                TargetImage=r"C:\Windows\System32\lsass.exe",
                GrantedAccess="0x1010",
            ),
            _record(
                SYSMON,
                13,
                4,
                EventType="SetValue",
                TargetObject=r"HKLM\x\y",
                Details="1",
                **_actor(),
            ),
            _record(SYSMON, 17, 5, PipeName=r"\evil", **_actor()),
        ],
    )
    timeline = host_timeline(
        graph, host="wks7", since=datetime(2026, 1, 1, tzinfo=UTC), until=None, limit=50
    )
    seen = [(e.kind, e.target, e.process is None) for e in timeline.events]
    assert seen == [
        ("driver_load", r"C:\Windows\System32\drivers\evil.sys", True),
        ("image_load", r"C:\t\evil.dll", False),
        ("process_access", r"C:\Windows\System32\lsass.exe", False),
        ("registry", r"HKLM\x\y", False),
        ("pipe_create", r"\evil", False),
    ]
    assert timeline.events[2].details["granted_access"] == ["0x1010"]

# ruff: noqa: E501  (auditd fixture lines are long by nature)
"""Each source's PE facts of a process image, and which way a connection went."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from provgraph.ingest.auditd import parse_auditd
from provgraph.ingest.ecs import parse_ecs
from provgraph.ingest.mde import parse_mde
from provgraph.ingest.model import ImageFacts, Kind, Origin, normalise_hash
from provgraph.ingest.sysmon import parse_sysmon

ORIGIN = Origin("test", "<test>", 1)
EMPIRE = (
    Path(__file__).resolve().parents[2]
    / "data"
    / "otrf_empire_msbuild_dcerpc_wmi_smb.mordor.ndjson"
)


def _empire(predicate: Any) -> dict[str, Any]:
    with EMPIRE.open() as lines:
        return next(r for r in map(json.loads, lines) if predicate(r))


def test_sysmon_1_gives_the_image_its_pe_facts_and_hashes() -> None:
    record = _empire(lambda r: r.get("EventID") == 1 and r.get("Image", "").endswith("MSBuild.exe"))
    [event] = parse_sysmon(record, ORIGIN)
    assert event.process.image_facts == ImageFacts(
        original_file_name="MSBuild.exe",
        company="Microsoft Corporation",
        product="Microsoft® .NET Framework",
        description="MSBuild.exe",
        file_version="4.8.3752.0 built by: NET48REL1",
        md5="6c5b12051e88be8cf20fb82834eccdd3",
        sha1="1b0ff94983178d3017b00432d34f95f404ba34e0",
        sha256="fc060ced6b0c7d0aada14ccde223d3eb7dd31c9861b3fd34816c948483702b38",
        imphash=None,  # Sysmon logs IMPHASH=000… for a .NET image: not computed
    )
    assert event.parent is not None and event.parent.image_facts is None


def test_a_malformed_hash_is_left_out_not_the_record() -> None:
    record = _empire(lambda r: r.get("EventID") == 1)
    record = {**record, "Hashes": "SHA256=not-hex,MD5=D41D8CD98F00B204E9800998ECF8427E,CRC=1"}
    [event] = parse_sysmon(record, ORIGIN)
    facts = event.process.image_facts
    assert facts is not None and facts.sha256 is None
    assert facts.md5 == "d41d8cd98f00b204e9800998ecf8427e"
    assert normalise_hash("sha1", "AB" * 20) == "ab" * 20
    assert normalise_hash("sha1", "AB" * 19) is None


MDE_START = {
    "Timestamp": "2024-05-01T08:00:00Z",
    "DeviceName": "ws7.corp.example",
    "ActionType": "ProcessCreated",
    "ProcessId": 4100,
    "ProcessCreationTime": "2024-05-01T08:00:00Z",
    "FolderPath": "C:\\Users\\Public\\build.exe",
    "FileName": "build.exe",
    "ProcessCommandLine": "build.exe x.proj",
    "SHA1": "1B0FF94983178D3017B00432D34F95F404BA34E0",
    "SHA256": "FC060CED6B0C7D0AADA14CCDE223D3EB7DD31C9861B3FD34816C948483702B38",
    "MD5": "6C5B12051E88BE8CF20FB82834ECCDD3",
    "ProcessVersionInfoCompanyName": "Microsoft Corporation",
    "ProcessVersionInfoProductName": "Microsoft® .NET Framework",
    "ProcessVersionInfoProductVersion": "4.8.3752.0",
    "ProcessVersionInfoOriginalFileName": "MSBuild.exe",
    "ProcessVersionInfoFileDescription": "MSBuild.exe",
    "InitiatingProcessId": 4000,
    "InitiatingProcessCreationTime": "2024-05-01T07:59:00Z",
    "InitiatingProcessFolderPath": "C:\\Windows\\System32\\cmd.exe",
    "InitiatingProcessFileName": "cmd.exe",
    "InitiatingProcessSHA256": "FF79D3C4A0B7EB191783C323AB8363EBD1FD10BE58D8BCC96B07067743CA81D5",
    "InitiatingProcessVersionInfoOriginalFileName": "Cmd.Exe",
    "InitiatingProcessSignatureStatus": "Valid",
}


def test_defender_process_rows_give_both_images_their_facts() -> None:
    [event] = parse_mde(MDE_START, ORIGIN)
    facts = event.process.image_facts
    assert facts is not None and facts.original_file_name == "MSBuild.exe"
    assert facts.sha256 == MDE_START["SHA256"].lower() and facts.md5 == MDE_START["MD5"].lower()
    assert facts.product_version == "4.8.3752.0" and facts.company == "Microsoft Corporation"
    assert event.parent is not None and event.parent.image_facts == ImageFacts(
        original_file_name="Cmd.Exe",
        sha256=MDE_START["InitiatingProcessSHA256"].lower(),
        signature_status="Valid",
        signed=True,
    )


def test_defender_network_direction() -> None:
    row = {
        **{k: v for k, v in MDE_START.items() if k.startswith(("Initiating", "Device", "Time"))},
        "ActionType": "InboundConnectionAccepted",
        "RemoteIP": "198.51.100.4",
        "RemotePort": 50123,
        "LocalIP": "10.0.0.7",
        "LocalPort": 3389,
        "Protocol": "Tcp",
    }
    [inbound] = parse_mde(row, ORIGIN)
    assert (inbound.direction, inbound.remote_ip, inbound.local_port) == (
        "inbound",
        "198.51.100.4",
        3389,
    )
    assert inbound.process.image_facts is None  # read from process creation rows only
    [outbound] = parse_mde({**row, "ActionType": "ConnectionSuccess"}, ORIGIN)
    assert outbound.direction == "outbound"


ECS_START = {
    "@timestamp": "2024-05-01T08:00:00.000Z",
    "event": {"category": ["process"], "type": ["start"]},
    "host": {"name": "ws8"},
    "process": {
        "entity_id": "child",
        "pid": 10,
        "executable": "C:\\Users\\Public\\build.exe",
        "pe": {
            "original_file_name": "MSBuild.exe",
            "company": "Microsoft Corporation",
            "imphash": "F34D5F2D4577ED6D9CEEC516C1F5A744",
        },
        "hash": {"sha256": "FC060CED6B0C7D0AADA14CCDE223D3EB7DD31C9861B3FD34816C948483702B38"},
        "code_signature": {
            "exists": True,
            "trusted": True,
            "subject_name": "Microsoft Corporation",
        },
        "parent": {"entity_id": "parent", "pid": 9, "executable": "C:\\cmd.exe"},
    },
}


def test_ecs_pe_hash_and_code_signature() -> None:
    [event] = parse_ecs(ECS_START, ORIGIN)
    assert event.process.image_facts == ImageFacts(
        original_file_name="MSBuild.exe",
        company="Microsoft Corporation",
        imphash="f34d5f2d4577ed6d9ceec516c1f5a744",
        sha256="fc060ced6b0c7d0aada14ccde223d3eb7dd31c9861b3fd34816c948483702b38",
        signed=True,
        signer="Microsoft Corporation",
        signature_status="trusted",
    )
    assert event.parent is not None and event.parent.image_facts is None


def test_ecs_network_direction() -> None:
    base = {
        "@timestamp": "2024-05-01T08:00:00.000Z",
        "event": {"category": ["network"], "type": ["start"]},
        "host": {"name": "ws8"},
        "process": {"entity_id": "srv", "pid": 10},
        "source": {"ip": "198.51.100.4", "port": 50123},
        "destination": {"ip": "10.0.0.8", "port": 8443},
        "network": {"transport": "tcp", "direction": "inbound"},
    }
    [inbound] = parse_ecs(base, ORIGIN)
    assert (inbound.direction, inbound.remote_ip, inbound.local_port) == (
        "inbound",
        "198.51.100.4",
        8443,
    )
    [outbound] = parse_ecs({**base, "network": {"direction": "outbound"}}, ORIGIN)
    assert (outbound.direction, outbound.remote_ip, outbound.remote_port) == (
        "outbound",
        "10.0.0.8",
        8443,
    )


def test_sysmon_3_initiated_false_is_inbound_from_the_peer() -> None:
    record = {
        "Event": {
            "System": {
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
                "EventID": 3,
                "Computer": "srv1.corp.example",
                "TimeCreated": {"#attributes": {"SystemTime": "2024-05-01T08:00:00Z"}},
            },
            "EventData": {
                "UtcTime": "2024-05-01 08:00:00.000",
                "ProcessGuid": "{11111111-2222-3333-4444-555555555555}",
                "ProcessId": 900,
                "Image": "C:\\Windows\\System32\\svchost.exe",
                "Protocol": "tcp",
                "Initiated": "false",
                "SourceIp": "198.51.100.4",
                "SourcePort": 50123,
                "DestinationIp": "10.0.0.9",
                "DestinationPort": 445,
            },
        }
    }
    [event] = parse_sysmon(record, ORIGIN)
    assert (event.direction, event.remote_ip, event.remote_port, event.local_port) == (
        "inbound",
        "198.51.100.4",
        50123,
        445,
    )


def test_auditd_accept_is_inbound_and_connect_outbound() -> None:
    # 02 00 | port 0x1f90 (8080) | 192.0.2.5 | padding
    text = """\
type=SYSCALL msg=audit(1700000000.500:300): arch=c000003e syscall=288 success=yes exit=5 ppid=1 pid=700 uid=0 ses=4294967295 exe="/usr/bin/node"
type=SOCKADDR msg=audit(1700000000.500:300): saddr=02001F90C0000205000000000000000000
type=EOE msg=audit(1700000000.500:300):
type=SYSCALL msg=audit(1700000000.600:301): arch=c000003e syscall=42 success=yes exit=0 ppid=1 pid=700 uid=0 ses=4294967295 exe="/usr/bin/node"
type=SOCKADDR msg=audit(1700000000.600:301): saddr=020001BBC0000206000000000000000000
type=EOE msg=audit(1700000000.600:301):
"""
    results = list(parse_auditd(enumerate(text.strip().split("\n"), 1), "audit.log"))
    accepted, connected = (r.events[0] for r in results if r.events)
    assert accepted.kind is Kind.NETWORK_CONNECT
    assert (accepted.direction, accepted.remote_ip) == ("inbound", "192.0.2.5")
    assert (connected.direction, connected.remote_ip, connected.remote_port) == (
        "outbound",
        "192.0.2.6",
        443,
    )

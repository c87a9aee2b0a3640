"""Parsing accounts, logons and Windows system changes (graph v2, part 2), on real Empire
records (Mordor) and on records in the shape Windows writes them."""

from __future__ import annotations

import json
from pathlib import Path

from provgraph.ingest.model import Kind, Origin, account_ref, split_user
from provgraph.ingest.security import service_image
from provgraph.ingest.windows import parse_windows

EMPIRE = (
    Path(__file__).resolve().parents[2] / "data/otrf_empire_msbuild_dcerpc_wmi_smb.mordor.ndjson"
)


def _empire(event_id: int) -> list:
    out = []
    for line, text in enumerate(EMPIRE.open(), 1):
        record = json.loads(text)
        if record.get("EventID") == event_id:
            out += parse_windows(record, Origin("windows", str(EMPIRE), line))
    return out


def test_account_keys() -> None:
    assert account_ref("S-1-5-21-1-2-3-1001", "CORP", "alice").key == "s-1-5-21-1-2-3-1001"
    assert account_ref(None, "CORP.EXAMPLE", "Alice").key == "corp\\alice"
    assert account_ref("S-1-0-0", "-", "-") is None  # the NULL SID names nobody
    anonymous = account_ref("S-1-5-7", "NT AUTHORITY", "ANONYMOUS LOGON")
    assert anonymous is not None and anonymous.name == "anonymous logon"  # by SID, an account
    assert account_ref(None, "NT AUTHORITY", "ANONYMOUS LOGON") is None  # by name, nobody
    system = account_ref("S-1-5-18", "THESHIRE", "WORKSTATION6$")
    assert system is not None and system.name_key == "nt authority\\system"
    assert split_user("NT AUTHORITY\\SYSTEM").key == "s-1-5-18"  # type: ignore[union-attr]


def test_empire_4624_4672_4634() -> None:
    logons = _empire(4624)
    assert logons and all(e.kind is Kind.LOGON and e.process is None for e in logons)
    network = [e for e in logons if e.logon.logon_id == "0x2f1c4dc"]
    [session] = network
    assert session.logon.logon_type == 3 and session.logon.source_ip == "172.18.39.5"
    assert session.logon.account.sid == "s-1-5-21-4228717743-1032521047-1810997296-1104"
    assert session.logon.elevated is True  # ElevatedToken %%1842
    # the request's facts Sigma's logon rules read: "-" is nothing, the NULL SID is kept
    assert session.logon.logon_process == "Kerberos" and session.logon.process_name is None
    assert session.logon.key_length == 0 and session.logon.impersonation_level == "%%1833"
    assert session.logon.subject_sid == "s-1-0-0" and session.logon.outbound_user is None
    special = _empire(4672)
    assert all(e.logon.elevated and e.logon.privileges for e in special)
    assert all(e.kind is Kind.LOGOFF and e.logon.logon_id for e in _empire(4634))


def test_empire_5156_direction_and_5158_skip_reason() -> None:
    events = _empire(5156)
    inbound = [e for e in events if e.direction == "inbound"]
    lsass = [e for e in inbound if e.process.pid == 696]
    assert lsass and all(e.local_port in (88, 389) for e in lsass)
    assert all(e.protocol in ("tcp", "udp") for e in events)
    record = next(r for t in EMPIRE.open() if (r := json.loads(t)).get("EventID") == 5158)
    skipped = parse_windows(record, Origin("windows", "x", 1))
    assert skipped == [] and "names no peer" in skipped.reason  # type: ignore[attr-defined]


def test_empire_4104_names_its_host_process_by_pid() -> None:
    blocks = _empire(4104)
    assert {e.process.uid for e in blocks} == {"p:workstation6:5460", "p:workstation6:3008"}
    assert all(e.script.total == 1 and e.script.account.sid for e in blocks)


def test_service_image_from_an_image_path() -> None:
    assert (
        service_image('"C:\\Program Files\\x\\svc.exe" -k run') == "C:\\Program Files\\x\\svc.exe"
    )
    assert service_image("C:\\Program Files\\x\\svc.exe -k") == "C:\\Program Files\\x\\svc.exe"
    assert service_image("%SystemRoot%\\PSEXESVC.exe") == "%SystemRoot%\\PSEXESVC.exe"
    assert service_image(None) is None

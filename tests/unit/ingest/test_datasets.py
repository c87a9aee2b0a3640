"""Concrete facts from the real public telemetry in tests/data (see ATTRIBUTION.md)."""

from __future__ import annotations

from collections import Counter
from functools import cache
from pathlib import Path

import pytest
from provgraph.ingest.deadletter import Summary
from provgraph.ingest.model import Event, FileOp, Kind, normalise_guid
from provgraph.ingest.reader import Result, iter_results

DATA = Path(__file__).resolve().parents[2] / "data"
MORDOR = "otrf_empire_msbuild_dcerpc_wmi_smb.mordor.ndjson"
VS_PREBUILD = "evtxattack_visual_studio_prebuild_event.sysmon.ndjson"
NPM_INSTALL = "sigma_shai_hulud_npm_package_installation.sysmon.ndjson"
BUN = "sigma_shai_hulud_node_bun_execution.sysmon.ndjson"
LOG4SHELL = "otrf_log4shell_linux_sysmon_syslog.ndjson"
ALL = [MORDOR, VS_PREBUILD, NPM_INSTALL, BUN, LOG4SHELL]


@cache
def _run(name: str) -> tuple[list[Result], Summary]:
    summary = Summary()
    return list(iter_results(DATA / name, summary=summary)), summary


def events(name: str) -> list[Event]:
    return [e for r in _run(name)[0] for e in r.events]


def starts(name: str) -> list[Event]:
    return [e for e in events(name) if e.kind is Kind.PROCESS_START]


def uid(guid: str) -> str:
    return "g:" + normalise_guid(guid)


@pytest.mark.parametrize("name", ALL)
def test_every_line_is_accepted_skipped_or_rejected(name: str) -> None:
    results, summary = _run(name)
    lines = len((DATA / name).read_bytes().splitlines())
    stats = summary.files[str(DATA / name)]
    assert stats.unrecognised is None
    assert len(results) == lines == stats.records
    assert stats.accepted + sum(stats.skipped.values()) + sum(stats.rejected.values()) == lines
    assert sorted(r.origin.line for r in results) == list(range(1, lines + 1))
    assert all(r.skipped or r.dead or r.events for r in results)
    assert not stats.rejected, stats.rejected  # the real files hold no broken records


@pytest.mark.parametrize("name", ALL)
def test_events_are_normalised(name: str) -> None:
    for event in events(name):
        assert event.ts.utcoffset() is not None and event.ts.utcoffset().total_seconds() == 0
        assert event.host == event.host.lower() and "." not in event.host
        assert event.origin.path.endswith(name) and event.origin.line >= 1
        assert event.raw is not None
        if event.process is None:  # what no process did: logons, shares, installs
            assert event.logon or event.share or event.service or event.task or event.script
        else:
            assert event.process.uid.startswith(("g:", "p:"))


def test_mordor_cmd_spawns_msbuild_on_workstation6_in_sysmon() -> None:
    [msbuild] = [
        e for e in starts(MORDOR) if e.origin.source == "sysmon" and e.process.name == "MSBuild.exe"
    ]
    assert msbuild.host == "workstation6"
    assert msbuild.host_fqdn == "workstation6.theshire.local"
    assert msbuild.process.uid == "g:d273d0f0-cc0c-5f67-0b08-000000000800"
    assert msbuild.parent is not None
    assert msbuild.parent.uid == "g:d273d0f0-cc0c-5f67-0908-000000000800"
    assert msbuild.parent.image == "C:\\Windows\\System32\\cmd.exe"
    assert "pshell.xml" in (msbuild.process.command_line or "")
    # Sysmon UtcTime (no zone, documented UTC), not the later @timestamp
    assert msbuild.ts.isoformat() == "2020-09-20T21:39:24.350000+00:00"


def test_mordor_cmd_spawns_msbuild_in_security_4688() -> None:
    [msbuild] = [
        e
        for e in starts(MORDOR)
        if e.origin.source == "security" and e.process.name == "MSBuild.exe"
    ]
    assert msbuild.process.pid == 0x1554
    assert msbuild.parent is not None and msbuild.parent.pid == 0x1B28
    assert msbuild.parent.uid == "p:workstation6:6952"  # creator: host + pid only
    assert msbuild.process.uid.startswith("p:workstation6:5460:20200920T2139")
    assert msbuild.parent.image == "C:\\Windows\\System32\\cmd.exe"
    assert msbuild.process.user == "THESHIRE\\pgustavo"
    # @timestamp (UTC ingest time), not the zone-less local EventTime (17:39)
    assert msbuild.ts.hour == 21


def test_mordor_msbuild_writes_the_generated_cs_files() -> None:
    msbuild = uid("{d273d0f0-cc0c-5f67-0b08-000000000800}")
    written = {
        e.file_path
        for e in events(MORDOR)
        if e.kind is Kind.FILE_WRITE and e.process.uid == msbuild
    }
    assert "C:\\Users\\pgustavo\\AppData\\Local\\Temp\\tfmbbev2\\tfmbbev2.0.cs" in written
    assert "C:\\Users\\pgustavo\\AppData\\Local\\Temp\\qu22daba\\qu22daba.0.cs" in written


def test_mordor_powershell_child_of_msbuild_connects_out() -> None:
    [ps] = [
        e
        for e in starts(MORDOR)
        if e.origin.source == "sysmon"
        and e.process.name == "powershell.exe"
        and e.parent is not None
        and e.parent.image
        and e.parent.image.endswith("MSBuild.exe")
    ]
    connects = [
        e
        for e in events(MORDOR)
        if e.kind is Kind.NETWORK_CONNECT and e.process.uid == ps.process.uid
    ]
    assert [(c.remote_ip, c.remote_port, c.protocol, c.direction) for c in connects] == [
        ("10.10.10.5", 80, "tcp", "outbound")
    ]
    msbuild = uid("{d273d0f0-cc0c-5f67-0b08-000000000800}")
    assert not [
        e for e in events(MORDOR) if e.kind is Kind.NETWORK_CONNECT and e.process.uid == msbuild
    ]


def test_mordor_skips_are_explained() -> None:
    _, summary = _run(MORDOR)
    skipped = summary.files[str(DATA / MORDOR)].skipped
    assert not [k for k in skipped if k.startswith("sysmon EventID")]  # every id is modelled
    # registry reads: every 4663 on a key, and the 4656 handle requests for reading (all but
    # the three asking for DELETE and KEY_SET_VALUE, 0x3001f, which are writes)
    assert skipped["security 4663 key access mask without a write right"] == 103
    assert skipped["security 4656 key access mask without a write right"] == 157
    assert skipped["security 4656 ObjectType SC_MANAGER OBJECT is not a registry key"] == 8
    assert not [k for k in skipped if "irrelevant record" in k]


def test_vs_prebuild_devenv_spawns_msbuild() -> None:
    [msbuild] = [e for e in starts(VS_PREBUILD) if e.process.name == "MSBuild.exe"]
    assert msbuild.parent is not None and msbuild.parent.image is not None
    assert msbuild.parent.image.endswith("\\devenv.exe")
    assert "/nodemode:1" in (msbuild.process.command_line or "")
    # evtx-rs GUIDs are upper-case without braces; stored in the one normal form
    assert msbuild.process.uid == msbuild.process.uid.lower()
    writes = [e for e in events(VS_PREBUILD) if e.kind is Kind.FILE_WRITE]
    assert writes and all(e.file_op is FileOp.CREATE for e in writes)
    assert any(e.process.uid == msbuild.process.uid for e in writes)


def test_shai_hulud_npm_install_and_its_shell_child() -> None:
    [npm] = starts(NPM_INSTALL)
    assert npm.process.uid == uid("0197231E-4478-6929-4110-000000000D00")
    assert npm.process.pid == 15284
    assert 'npm-cli.js" install @asyncapi/cli@4.1.3' in (npm.process.command_line or "")
    assert npm.host == "swachchhanda" and npm.host_fqdn is None
    # the bun file is a later npm install in the same session: its node.exe is another process
    [child] = [
        e
        for e in starts(BUN)
        if e.parent and 'npm-cli.js" install' in (e.parent.command_line or "")
    ]
    assert child.parent is not None and child.parent.image == "C:\\Program Files\\nodejs\\node.exe"
    assert child.parent.uid == uid("0197231E-563F-6929-C310-000000000D00")
    assert child.process.name == "cmd.exe"
    assert child.process.command_line == "C:\\WINDOWS\\system32\\cmd.exe /d /s /c node setup_bun.js"
    grandchildren = [
        e
        for e in starts(BUN)
        if e.parent and e.parent.image and "setup_bun" in (e.parent.command_line or "")
    ]
    assert any(e.process.name == "bun.exe" for e in grandchildren)


def test_log4shell_java_spawns_a_shell_despite_the_cut_message() -> None:
    java_children = [
        e
        for e in starts(LOG4SHELL)
        if e.parent is not None and (e.parent.image or "").endswith("/bin/java")
    ]
    [shell] = java_children
    assert shell.process.image == "/bin/bash"
    assert shell.process.uid == "g:94325212-fc0d-627b-4874-61f901560000"
    assert shell.parent is not None and shell.parent.uid == "g:94325212-f5a5-627b-b809-87f375550000"
    assert shell.truncated == ("ParentCommandLine",)  # syslog cut the message there
    assert shell.host == "ubuntu5" and shell.process.user == "tomcat"


def test_log4shell_linux_paths_and_unknown_processes() -> None:
    images = {e.process.image for e in starts(LOG4SHELL)}
    assert {"/usr/bin/whoami", "/usr/bin/base64", "/bin/dash"} <= images
    ends = [e for e in events(LOG4SHELL) if e.kind is Kind.PROCESS_END]
    unknown = [e for e in ends if e.process.image is None]
    # "<unknown process>" with a placeholder GUID: keyed by host + pid, never by the GUID
    assert unknown and all(e.process.uid.startswith("p:ubuntu5:") for e in unknown)
    kinds = Counter(e.kind for e in events(LOG4SHELL))
    assert kinds[Kind.NETWORK_CONNECT] == 6 and kinds[Kind.FILE_WRITE] == 6

"""Human output at 80 columns, as a responder reads it in a terminal or a pipe: names before
ids, one UTC time format, nothing absent printed as None, no empty headings, and no name,
path or id cut or split."""

from __future__ import annotations

import json
import re

from provgraph.cli.trace import VERBS
from tests.integration.cli.conftest import (
    BRACKETS_UID,
    CMD_UID,
    MSBUILD_UID,
    OTHER_TIMES,
    SOURCE_FILE,
    TIME,
    Cli,
)


def _clean(text: str) -> None:
    """What no human output may hold; every time in the one format."""
    assert "None" not in text and "pid=" not in text
    assert not OTHER_TIMES.search(text), OTHER_TIMES.search(text)
    for stamp in re.findall(r"\d{4}-\d\d-\d\d[ T][\d:.]+(?:Z|[+-]\d\d:\d\d)?", text):
        assert TIME.fullmatch(stamp), stamp
    assert "\x1b[" not in text  # no colour codes into a pipe


def test_alerts_list_names_first(cli: Cli) -> None:
    done = cli("alerts", "list")
    assert done.code == 0 and done.err == ""
    _clean(done.out)
    lines = done.out.splitlines()
    assert f"    - build: msbuild.exe (5460)  {MSBUILD_UID}" in lines
    assert f"    - source_file: {SOURCE_FILE}" in lines  # the path as logged, whole
    assert f"    - script_parent: cmd.exe (6952)  {CMD_UID}" in lines
    assert not any("Process g:" in line or "Process:" in line for line in lines)
    assert "    2020-09-20 21:39:24.350Z .. 2020-09-20 21:39:27.981Z  T1554" in lines
    # build 1, script parent 1, shell child 1 (a package manager only while it installs)
    assert lines[-1] == "3 alert(s)"


def test_alerts_list_filters_by_host_in_any_case(cli: Cli) -> None:
    done = cli("alerts", "list", "--host", "WorkStation6.theshire.local")
    assert done.code == 0 and done.out.splitlines()[-1] == "2 alert(s)"


def test_alerts_show_with_attack_names(cli: Cli) -> None:
    alert_id = json.loads(
        cli("alerts", "list", "--json", "--rule", "build_process_compromise").out
    )["alerts"][0]["id"]
    done = cli("alerts", "show", alert_id)
    assert done.code == 0
    lines = done.out.splitlines()
    assert lines[0] == "Potential Build Process Compromise  (build_process_compromise)"
    assert "tactics: TA0003 Persistence" in lines
    assert "techniques: T1554 Compromise Host Software Binary" in lines
    assert "seen 2020-09-20 21:39:24.350Z .. 2020-09-20 21:39:27.981Z  hits 1" in lines
    assert f"        msbuild.exe (5460) -> {SOURCE_FILE}" in lines
    evidence = done.out.split("\nevidence\n")[1]
    _clean("\n".join(line for line in evidence.splitlines() if not line.strip().startswith("{")))
    assert "unassigned" in done.out and "assignee -" not in done.out


def test_trace_process_tree(cli: Cli) -> None:
    done = cli("trace", "process", MSBUILD_UID)
    assert done.code == 0 and done.err == ""
    _clean(done.out)
    lines = done.out.splitlines()
    # root first, each on its own line with its uid whole on the next
    order = [
        next(i for i, line in enumerate(lines) if name in line)
        for name in (
            "svchost.exe (960)",
            "wmiprvse.exe (6944)  2020-09-20 21:39:23.701Z",
            "cmd.exe (6952)  2020-09-20 21:39:24.176Z",
            "▶ msbuild.exe (5460)  2020-09-20 21:39:24.350Z  workstation6",
        )
    ]
    assert order == sorted(order)
    assert lines[order[-1] + 1].endswith(MSBUILD_UID)
    # Sysmon (NXLog) dropped cvtres's pid; its Security 4688 record, the same process, gave it
    assert any(line.endswith("── cvtres.exe (9600)  2020-09-20 21:39:27.294Z") for line in lines)
    # every path it wrote, whole, at the end of its line
    doc = json.loads(cli("trace", "process", MSBUILD_UID, "--json").out)
    for item in doc["wrote"]:
        assert any(line.endswith(item["path"]) for line in lines), item["path"]
    assert any(line.endswith(f"wrote {len(doc['wrote'])} file(s)") for line in lines)
    # only command lines are cut, and those to the 80 columns
    for line in lines:
        if "…" in line:
            assert len(line) <= 80 and ".exe (" not in line and "g:" not in line, line


def test_trace_process_prints_brackets_as_typed(cli: Cli) -> None:
    done = cli("trace", "process", BRACKETS_UID)
    assert done.code == 0, done
    assert "[Environment]::" in done.out  # markup-like text is text


def test_trace_file_finds_a_windows_path_in_any_case(cli: Cli) -> None:
    for typed in (SOURCE_FILE, SOURCE_FILE.lower(), SOURCE_FILE.upper()):
        done = cli("trace", "file", typed)
        assert done.code == 0, (typed, done)
        lines = done.out.splitlines()
        assert lines[0] == f"{SOURCE_FILE} on workstation6"  # as logged, not as typed
        assert lines[1] == "└── written by"
        assert "executed as" not in done.out  # never run: no empty heading
        assert any(
            line.endswith("create, delete ×2  2020-09-20 21:39:27.824Z .. 2020-09-20 21:39:27.981Z")
            for line in lines
        )
        _clean(done.out)


def test_trace_file_linux_paths_keep_their_case(cli: Cli) -> None:
    assert cli("trace", "file", "/bin/bash").code == 0
    assert cli("trace", "file", "/Bin/Bash").code == 5


def test_trace_file_executed_heading_when_it_ran(cli: Cli) -> None:
    done = cli("trace", "file", r"c:\windows\syswow64\cmd.exe")
    assert done.code == 0, done
    assert "executed as" in done.out and "child process(es)" in done.out
    _clean(done.out)


def test_trace_host_one_event_a_line(cli: Cli) -> None:
    done = cli("trace", "host", "workstation6", "--limit", "12")
    assert done.code == 0
    lines = done.out.splitlines()
    assert len(lines) == 12
    for line in lines:
        assert TIME.fullmatch(line[:24]) and line[24:26] == "  ", line
        assert line.split()[2] in {verb.split()[0] for verb in VERBS.values()}, line
    assert done.err.strip() == "more than 12 events: narrow with --since/--until or raise --limit"
    _clean(done.out)
    # where the attack starts: WMI starts a process; svchost accepted the attacker's RPC
    at = cli(
        "trace", "host", "workstation6", "--since", "2020-09-20T21:39:22.700Z", "--limit", "500"
    )
    assert at.code == 0, at
    assert re.search(
        r"start +wmiprvse\.exe \(6944\) +C:\\Windows\\System32\\wbem\\WmiPrvSE", at.out
    )
    # inbound: the client's address (its ephemeral port names nothing) and our listening port
    assert re.search(r"accept +svchost\.exe \(996\) +172\.18\.39\.5/tcp -> :135\n", at.out)
    _clean(at.out)


def test_trace_host_window(cli: Cli) -> None:
    done = cli(
        "trace",
        "host",
        "workstation6",
        "--since",
        "2020-09-20T21:39:24.176Z",
        "--until",
        "2020-09-20T21:39:24.351Z",
    )
    assert done.code == 0, done
    facts = [line.split()[2:4] for line in done.out.splitlines()]
    # the starts in that window; between them, what they did first (image loads, registry…)
    assert [f for f in facts if f[0] == "start"] == [
        ["start", "cmd.exe"],
        ["start", "conhost.exe"],
        ["start", "msbuild.exe"],
    ]
    assert {f[0] for f in facts} - {"start"} <= {verb.split()[0] for verb in VERBS.values()}


def test_trace_ip_and_a_name(cli: Cli) -> None:
    done = cli("trace", "ip", "172.18.39.5")
    assert done.code == 0
    lines = done.out.splitlines()
    assert lines[0] == "172.18.39.5/tcp"
    # svchost's pid comes from the Security 5156 record of the same connection (one process)
    assert lines[1].startswith("    accepted by workstation6  svchost.exe (996)  g:")
    # three connections from three ephemeral ports: one peer, one edge; Sysmon 3 and Security
    # 5156 each log them, a second apart, so the edge holds six times (not joined across
    # sources: see the README's note on connection counts)
    assert TIME.search(lines[2]) and lines[2].startswith("        ×6  ")
    _clean(done.out)
    named = cli("trace", "ip", "workstation6.theshire.local")
    assert named.code == 0, named
    # the name's resolutions, and the connections to the addresses it resolved to
    assert "\nDNS workstation6.theshire.local -> 172.18.39.6\n" in named.out
    assert named.out.startswith("172.18.39.6:135/tcp\n")
    _clean(named.out)


def test_rules_and_keys_lists(cli: Cli) -> None:
    rules = cli("rules", "list").out.splitlines()
    assert rules[0].split() == ["build_process_compromise", "medium", "every", "1d", "T1554"]
    assert rules[1] == "    Potential Build Process Compromise"
    assert all(len(line) <= 80 for line in rules if not line.startswith("msbuild_script_parent"))
    cli("keys", "create", "--name", "analyst", "--scope", "read", "--scope", "triage")
    listed = cli("keys", "list").out.splitlines()
    assert any(line.startswith("analyst  ") and "  read,triage  " in line for line in listed)
    _clean("\n".join(listed))

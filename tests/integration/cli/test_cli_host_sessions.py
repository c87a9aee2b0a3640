"""`provgraph trace host` shows what no process did (accounts, part 2): logons, logoffs and
share access on the sample data, named by account, and the same rows in `--json` with a
null process."""

from __future__ import annotations

import json

from tests.integration.cli.conftest import OTHER_TIMES, TIME, Cli


def test_trace_host_lists_logons_and_share_access_by_account(cli: Cli) -> None:
    done = cli("trace", "host", "workstation6", "--limit", "10000")
    assert done.code == 0, done
    lines = done.out.splitlines()
    logons = [line for line in lines if "  logon  " in line]
    assert logons and all("THESHIRE\\pgustavo" in line for line in logons), logons
    assert any(
        "type 3 from 172.18.39.5" in line and "logon 0x2f1c4dc" in line for line in logons
    ), logons
    assert any("  logoff  " in line and "THESHIRE\\pgustavo" in line for line in lines)
    shares = [line for line in lines if "  share  " in line]
    assert any("\\\\*\\C$" in line and "THESHIRE\\pgustavo" in line for line in shares), shares
    assert all(TIME.match(line) for line in lines) and not OTHER_TIMES.search(done.out)
    assert "?" not in "".join(line.split("  ")[2] for line in logons)  # a name, not "?"


def test_trace_host_json_has_null_processes(cli: Cli) -> None:
    done = cli("trace", "host", "workstation6", "--limit", "1000", "--json")
    assert done.code == 0, done
    events = json.loads(done.out)["events"]
    sessions = [e for e in events if e["kind"] in ("logon", "logoff", "share_access")]
    assert sessions and all(e["process"] is None for e in sessions)
    assert all(e["process"]["uid"] for e in events if e["kind"] == "process_start")

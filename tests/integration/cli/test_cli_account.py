"""`provgraph trace account`: the account query from the terminal, on the sample data (the
Empire set's pgustavo, who ran the WMI-launched MSBuild chain over a network logon)."""

from __future__ import annotations

import json

from tests.integration.cli.conftest import Cli

PGUSTAVO = "s-1-5-21-4228717743-1032521047-1810997296-1104"


def test_trace_account_json_is_the_api_shape(cli: Cli) -> None:
    done = cli("trace", "account", "theshire\\PGUSTAVO", "--json")
    assert done.code == 0, done
    body = json.loads(done.out)
    [account] = body["accounts"]
    assert account["account"]["key"] == PGUSTAVO
    [ws6] = [h for h in account["hosts"] if h["host"] == "workstation6"]
    processes = {p["name"] for s in ws6["logons"] for p in s["processes"]}
    assert {"msbuild.exe", "csc.exe", "cmd.exe"} <= processes
    assert any(a["kind"] == "ACCESSED_SHARE" for s in ws6["logons"] for a in s["actions"])


def test_trace_account_by_sid_reads_as_a_tree(cli: Cli) -> None:
    done = cli("trace", "account", PGUSTAVO.upper())
    assert done.code == 0, done
    assert "THESHIRE\\pgustavo" in done.out and PGUSTAVO in done.out
    assert "workstation6" in done.out and "logon 0x2f1c4dc" in done.out
    assert "msbuild.exe" in done.out and "share \\\\*\\C$" in done.out

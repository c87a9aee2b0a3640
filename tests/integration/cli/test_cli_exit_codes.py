"""Exit statuses scripts can trust, each with one line on stderr and no traceback: 5 for a
thing that is not there or a lookup that found nothing, 2 for bad arguments, 3 for a rule
folder that does not load, 0 for an answer (an empty listing is one)."""

from __future__ import annotations

import pytest

from provgraph.cli.terminal import EXIT_CODES, EXIT_NOT_FOUND, EXIT_USAGE
from tests.integration.cli.conftest import Cli

NOT_FOUND = [
    (["trace", "host", "nosuchhost"], "no host nosuchhost"),
    (["trace", "host", "NoSuchHost.corp.example"], "no host NoSuchHost.corp.example"),
    (
        ["trace", "host", "workstation6", "--since", "2030-01-01"],
        "no events on workstation6 between 2030-01-01 00:00:00.000Z and the end",
    ),
    (["trace", "ip", "203.0.113.7"], "no process contacted 203.0.113.7"),
    (["trace", "ip", "nothing.example"], "no process contacted nothing.example"),
    (["trace", "process", "g:nope"], "no process g:nope"),
    (["trace", "account", "THESHIRE\\nobody"], "no account THESHIRE\\nobody"),
    # the path as typed: one backslash each, not a Python repr
    (["trace", "file", r"C:\Users\Nobody\x.cs"], r"no file C:\Users\Nobody\x.cs"),
    (
        ["trace", "file", r"C:\Users\Nobody\x.cs", "--host", "workstation6"],
        r"no file C:\Users\Nobody\x.cs on workstation6",
    ),
    (["trace", "file", "/BIN/BASH"], "no file /BIN/BASH"),  # Linux paths keep their case
    (["alerts", "show", "nope"], "no alert nope"),
    (["alerts", "set", "nope", "--status", "closed"], "no alert nope"),
    (["keys", "revoke", "nope"], "no API key with id nope"),
    (["rules", "run", "--rule", "nope"], "no such rule: nope"),
]


@pytest.mark.parametrize(("args", "message"), NOT_FOUND, ids=[" ".join(a) for a, _ in NOT_FOUND])
def test_not_found_is_5_with_one_line(cli: Cli, args: list[str], message: str) -> None:
    done = cli(*args)
    assert done.code == EXIT_NOT_FOUND == 5, done
    assert done.out == ""
    assert done.err_lines == [f"error: {message}"]


USAGE = [
    (["alerts", "list", "--status", "bogus"], "'bogus' is not one of 'open', 'acknowledged'"),
    (["alerts", "list", "--since", "yesterday"], "yesterday is not an ISO time"),
    (["alerts", "list", "--since", "-2x"], "-2x is not a time before now"),
    (["alerts", "list", "--limit", "0"], "Invalid value for '--limit'"),
    (["alerts", "list", "--after-seq", "-1"], "Invalid value for '--after-seq'"),
    (["trace", "host", "ws1", "--until", "soon"], "Invalid value for --until"),
    (["trace", "process", "g:x", "--depth", "99"], "Invalid value for '--depth'"),
    (["alerts", "set", "x"], "nothing to set: give --status, --assignee or --comment"),
    (["alerts", "set", "x", "--assignee", "a" * 201], "--assignee: String should have at most"),
    (["alerts", "show", "x", "--json", "--ocsf"], "give one"),
    (["alerts", "show"], "Missing argument"),
    (["keys", "create", "--name", "k", "--scope", "root"], "Invalid value for '--scope'"),
    (["ingest", "--format", "nosuch", "x.ndjson"], "unknown format 'nosuch'; --format accepts"),
    (["trace", "host", "--sinc", "x"], "No such option: --sinc"),
    (["nosuch"], "No such command 'nosuch'"),
]


@pytest.mark.parametrize(("args", "message"), USAGE, ids=[" ".join(a)[:60] for a, _ in USAGE])
def test_usage_errors_are_2_with_one_line(cli: Cli, args: list[str], message: str) -> None:
    done = cli(*args)
    assert done.code == EXIT_USAGE == 2, done
    assert done.out == ""
    [line] = done.err_lines
    assert line.startswith("error: ") and message in line, line
    assert "Traceback" not in done.err and "╭" not in done.err


def test_option_errors_point_at_the_commands_help(cli: Cli) -> None:
    [line] = cli("trace", "process", "g:x", "--depth", "99").err_lines
    assert line.endswith("(see `provgraph trace process --help`)")


def test_a_rule_folder_that_does_not_exist_is_3(cli: Cli, tmp_path: object) -> None:
    for command in (["rules", "list"], ["rules", "validate", "--offline"], ["rules", "test"]):
        done = cli(*command, "--rules-dir", "/nonexistent-rules")
        assert done.code == 3, (command, done)
        assert "rule folder does not exist" in done.err


def test_an_empty_listing_is_an_answer(cli: Cli) -> None:
    done = cli("alerts", "list", "--host", "nosuchhost")
    assert done.code == 0 and done.out.strip() == "0 alert(s)" and done.err == ""


def test_neo4j_down_is_one_line_and_2(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("NEO4J_URI", f"bolt://127.0.0.1:{port}")
    done = cli("trace", "host", "workstation6")
    assert done.code == 2, done
    [line] = done.err_lines
    assert line.startswith(f"error: Neo4j at bolt://127.0.0.1:{port} did not answer"), line


def test_every_status_is_in_the_help(cli: Cli) -> None:
    done = cli("--help")
    assert done.code == 0
    text = " ".join(done.out.replace("│", " ").split())
    for code, meaning in EXIT_CODES:
        assert f"{code}: {' '.join(meaning.split())}" in text, code
    lookup = " ".join(cli("trace", "host", "--help").out.replace("│", " ").split())
    assert "5 not found or nothing found" in lookup

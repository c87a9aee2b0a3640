"""The responder CLI prints readable answers from the same services as the API."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext

import pytest
import typer
from provgraph.graph.tx import Graph
from typer.testing import CliRunner

import provgraph.cli.terminal
from provgraph.cli.alerts import alerts_app as alert_app
from provgraph.cli.keys import keys_app
from provgraph.cli.main import main
from provgraph.cli.trace import trace_app
from tests.integration.api import scenario

cli = typer.Typer()
cli.add_typer(keys_app, name="keys")
cli.add_typer(alert_app, name="alert")
cli.add_typer(trace_app, name="trace")
runner = CliRunner()


@pytest.fixture
def shared(loaded: Graph, monkeypatch: pytest.MonkeyPatch) -> Graph:
    monkeypatch.setattr(provgraph.cli.terminal, "connect", lambda: nullcontext(loaded))
    return loaded


def _run(*args: str) -> str:
    result = runner.invoke(cli, list(args), env={"COLUMNS": "220"})
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_keys_lifecycle(shared: Graph) -> None:
    out = _run("keys", "create", "--name", "soar", "--scope", "read", "--scope", "triage")
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("pgk_")
    listed = _run("keys", "list")
    assert "soar" in listed and secret not in listed
    key_id = secret[4:16]
    assert "revoked" in _run("keys", "revoke", key_id)
    assert f"soar  {key_id}  read,triage" in _run("keys", "list")
    assert "revoked" in _run("keys", "list").splitlines()[0]


def test_alert_show_and_set(shared: Graph) -> None:
    alert = scenario.create_alert(shared)
    shown = _run("alert", "show", alert["id"])
    assert "Download then execute" in shown and "T1105" in shown and "WROTE" in shown
    assert "sysmon:tests/scenario.ndjson:5" in shown
    assert "updated" in _run(
        "alert", "set", alert["id"], "--status", "closed", "--comment", "benign"
    )
    assert "cli:" in _run("alert", "show", alert["id"])
    assert '"class_uid": 2004' in _run("alert", "show", alert["id"], "--ocsf")
    assert alert["id"] in _run("alert", "list")


def test_traces(shared: Graph) -> None:
    tree = _run("trace", "process", "g:pwsh")
    assert tree.index("explorer.exe") < tree.index("cmd.exe") < tree.index("powershell.exe")
    assert "payload.exe" in tree and "whoami.exe" in tree
    file_tree = _run("trace", "file", scenario.PAYLOAD, "--host", "ws1")
    assert "written, then executed" in file_tree and "powershell.exe" in file_tree
    timeline = _run("trace", "host", "ws1", "--since", "2024-05-01T10:00:00")
    verbs = [line.split()[2] for line in timeline.splitlines()]
    assert verbs.index("start") < verbs.index("write")
    contacts = _run("trace", "ip", "203.0.113.7")
    assert "powershell.exe" in contacts and "payload.exe" in contacts
    assert "c2.example" in _run("trace", "ip", "c2.example")


def test_alerts_list_pages_up_to_the_published_change_number(shared: Graph) -> None:
    """`alerts list --after-seq` pages as the API does, up to the published watermark: an
    alert committed after the reader connected but not yet published is not shown, so paging
    on from the last seq shown cannot move past it; once published, the next page has it."""
    first = scenario.create_alert(shared)
    page = json.loads(_run("alert", "list", "--json"))
    assert [(a["id"], a["seq"]) for a in page["alerts"]] == [(first["id"], 1)]
    assert page["next_after_seq"] == 1 and page["has_more"] is False
    held = scenario.create_alert(shared, publish=False)
    empty = json.loads(_run("alert", "list", "--json", "--after-seq", "1"))
    assert empty == {"alerts": [], "next_after_seq": 1, "has_more": False}
    assert "0 alert(s)" in _run("alert", "list", "--after-seq", "1")
    scenario.publish_seq(shared)
    later = json.loads(_run("alert", "list", "--json", "--after-seq", "1"))
    assert [(a["id"], a["seq"]) for a in later["alerts"]] == [(held["id"], 2)]
    roles = {e["role"] for e in later["alerts"][0]["entities"]}
    assert roles >= {"downloader", "payload", "host"}


def test_a_missing_thing_is_one_line_and_exit_status_5(
    shared: Graph, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for args, message in (
        (["trace", "process", "g:nope"], "no process g:nope"),
        (["trace", "file", "C:\\nope", "--host", "ws1"], "no file C:\\nope on ws1"),
        (["alerts", "show", "nope"], "no alert nope"),
        (["alerts", "set", "nope", "--status", "closed"], "no alert nope"),
    ):
        monkeypatch.setattr(sys, "argv", ["provgraph", *args])
        with pytest.raises(SystemExit) as done:
            main()
        assert done.value.code == 5, args
        assert capsys.readouterr().err.strip() == f"error: {message}"

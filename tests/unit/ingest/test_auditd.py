# ruff: noqa: E501  (auditd fixture lines are long by nature)
"""Synthetic auditd logs (raw and enriched format)."""

from __future__ import annotations

from provgraph.ingest.auditd import AuditResult, parse_auditd
from provgraph.ingest.model import FileOp, Kind


def run(text: str) -> list[AuditResult]:
    # split on "\n" only: str.splitlines also splits on 0x1d, the enriched-format separator
    lines = enumerate(text.strip().split("\n"), 1)
    return list(parse_auditd(lines, "audit.log", default_host="build01.example"))


EXEC = """\
type=SYSCALL msg=audit(1700000000.123:100): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=0 items=2 ppid=900 pid=1234 auid=1000 uid=1000 gid=1000 euid=1000 ses=3 comm="sh" exe="/usr/bin/dash" key=(null)
type=EXECVE msg=audit(1700000000.123:100): argc=3 a0="sh" a1="-c" a2=6E706D20696E7374616C6C202626206375726C
type=CWD msg=audit(1700000000.123:100): cwd="/srv/app"
type=PATH msg=audit(1700000000.123:100): item=0 name="/bin/sh" nametype=NORMAL
type=PROCTITLE msg=audit(1700000000.123:100): proctitle=7368002D63
type=EOE msg=audit(1700000000.123:100):
"""


def test_execve_becomes_process_start() -> None:
    [result] = run(EXEC)
    [event] = result.events
    assert event.kind is Kind.PROCESS_START and event.host == "build01"
    assert event.process.image == "/usr/bin/dash"
    assert event.process.command_line == "sh -c npm install && curl"  # hex arg decoded
    assert event.process.uid == "p:build01:1234:20231114T221320.123000"
    assert event.parent is not None and event.parent.uid == "p:build01:900"
    assert event.process.user == "1000" and event.origin.line == 1


def test_interleaved_records_and_missing_eoe_are_grouped_by_serial() -> None:
    text = """\
node=h1.example type=SYSCALL msg=audit(1700000001.000:201): arch=c000003e syscall=42 success=no exit=-115 ppid=1 pid=50 uid=0 ses=4294967295 exe="/usr/bin/curl"
node=h1.example type=SYSCALL msg=audit(1700000001.001:202): arch=c000003e syscall=87 success=yes exit=0 ppid=1 pid=51 uid=0 exe="/usr/bin/rm"
node=h1.example type=SOCKADDR msg=audit(1700000001.000:201): saddr=0A0001BB00000000200107B8000000000000000000000001000000000000
node=h1.example type=CWD msg=audit(1700000001.001:202): cwd="/tmp"
node=h1.example type=PATH msg=audit(1700000001.001:202): item=0 name="/tmp/" nametype=PARENT
node=h1.example type=PATH msg=audit(1700000001.001:202): item=1 name="stage.sh" nametype=DELETE
"""
    results = run(text)
    events = {e.kind: e for r in results for e in r.events or []}
    conn = events[Kind.NETWORK_CONNECT]
    assert (conn.remote_ip, conn.remote_port, conn.host) == ("2001:7b8::1", 443, "h1")
    assert conn.process.logon_id is None  # ses -1
    delete = events[Kind.FILE_WRITE]
    assert delete.file_op is FileOp.DELETE and delete.file_path == "/tmp/stage.sh"


def test_open_for_write_rename_and_read_only_open() -> None:
    text = """\
type=SYSCALL msg=audit(1700000002.000:300): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=1 a2=241 a3=1b6 ppid=1 pid=60 uid=0 exe="/usr/bin/tee"
type=PATH msg=audit(1700000002.000:300): item=0 name="/etc/" nametype=PARENT
type=PATH msg=audit(1700000002.000:300): item=1 name="/etc/cron.d/job" nametype=CREATE
type=EOE msg=audit(1700000002.000:300):
type=SYSCALL msg=audit(1700000002.100:301): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=1 a2=0 a3=0 ppid=1 pid=60 uid=0 exe="/usr/bin/cat"
type=PATH msg=audit(1700000002.100:301): item=0 name="/etc/passwd" nametype=NORMAL
type=EOE msg=audit(1700000002.100:301):
type=SYSCALL msg=audit(1700000002.200:302): arch=c000003e syscall=82 success=yes exit=0 ppid=1 pid=61 uid=0 exe="/usr/bin/mv"
type=PATH msg=audit(1700000002.200:302): item=2 name="/tmp/a" nametype=DELETE
type=PATH msg=audit(1700000002.200:302): item=3 name="/tmp/b" nametype=CREATE
type=EOE msg=audit(1700000002.200:302):
"""
    created, read, renamed = run(text)
    assert created.events[0].file_op is FileOp.CREATE
    assert created.events[0].file_path == "/etc/cron.d/job"
    assert read.events == [] and "reading" in read.events.reason
    assert renamed.events[0].previous_path == "/tmp/a"


def test_enriched_format_and_bad_lines() -> None:
    text = (
        "type=SYSCALL msg=audit(1700000003.000:400): arch=c000003e syscall=59 success=yes "
        'exit=0 ppid=2 pid=70 uid=0 exe="/usr/bin/id"\x1dARCH=x86_64 SYSCALL=execve UID="root"\n'
        'type=EXECVE msg=audit(1700000003.000:400): argc=1 a0="id"\n'
        "this is not audit\n"
        "type=SYSCALL msg=audit(1700000003.000:401): arch=c000003e syscall=59 success=yes pid=x\n"
    )
    results = run(text)
    good = [r for r in results if r.events]
    assert good[0].events[0].process.user == "root"
    errors = [r.error for r in results if r.error]
    assert {e.field for e in errors} == {"type", "SYSCALL.pid"}
